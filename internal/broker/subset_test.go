package broker

import (
	"slices"
	"strconv"
	"testing"
)

// TestSubSet files, finds and removes subscriptions on either side of the
// point where the set moves from its slice to a map, and checks that it
// always holds exactly what was added and not removed.
func TestSubSet(t *testing.T) {
	tests := []struct {
		name   string
		add    int   // subscriptions "0", "1", … added in order
		remove []int // then removed, in this order
	}{
		{"empty", 0, nil},
		{"one", 1, nil},
		{"one removed", 1, []int{0}},
		{"full slice", subSetSmall, []int{0, subSetSmall - 1, 3}},
		{"past the slice", subSetSmall + 1, []int{subSetSmall, 0}},
		{"many", 300, []int{299, 0, 150, 7, 8}},
		{"remove twice", 3, []int{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ss subSet
			want := map[string]bool{}
			for i := range tt.add {
				id := strconv.Itoa(i)
				if ss.get(id) != nil {
					t.Fatalf("get(%q) before add: found", id)
				}
				ss.add(&Subscription{id: id})
				want[id] = true
			}
			for _, i := range tt.remove {
				id := strconv.Itoa(i)
				ss.remove(id)
				delete(want, id)
			}
			if ss.len() != len(want) {
				t.Fatalf("len = %d, want %d", ss.len(), len(want))
			}
			for i := range tt.add + 1 {
				id := strconv.Itoa(i)
				if got := ss.get(id); (got != nil) != want[id] || got != nil && got.id != id {
					t.Errorf("get(%q) = %v, want present=%v", id, got, want[id])
				}
			}
			var walked []string
			for sub := range ss.all {
				walked = append(walked, sub.id)
			}
			slices.Sort(walked)
			var wantIDs []string
			for id := range want {
				wantIDs = append(wantIDs, id)
			}
			slices.Sort(wantIDs)
			if !slices.Equal(walked, wantIDs) {
				t.Errorf("all walked %v, want %v", walked, wantIDs)
			}
		})
	}
}
