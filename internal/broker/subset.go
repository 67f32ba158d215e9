package broker

import "slices"

// subSetSmall is how many subscriptions a session keeps in a plain slice
// before it indexes them in a map. A chat tab holds one subscription per open
// room plus a couple of user queues, so almost every session stays below it,
// and a search of a few ids in order is as quick as a map lookup.
const subSetSmall = 8

// subSet is a session's subscriptions by client id. An idle connection holds
// one or two subscriptions, and a Go map costs about 250 bytes for its first
// entry: on 10,000 idle connections that was 2.4 MB, a fifth of what the
// broker itself keeps per connection. subSet keeps up to subSetSmall in a
// slice (8 bytes each) and moves to a map past that, so a client allowed
// hundreds (see Config.MaxSubscriptions) still finds each id in constant
// time. The zero value is empty and ready. Only the session's reader
// goroutine uses it.
type subSet struct {
	small []*Subscription          // while len ≤ subSetSmall and big is nil
	big   map[string]*Subscription // once it outgrew small; it stays a map
}

func (ss *subSet) len() int {
	if ss.big != nil {
		return len(ss.big)
	}
	return len(ss.small)
}

// get returns the subscription with the client id, or nil.
func (ss *subSet) get(id string) *Subscription {
	if ss.big != nil {
		return ss.big[id]
	}
	for _, sub := range ss.small {
		if sub.id == id {
			return sub
		}
	}
	return nil
}

// add files sub under sub.id, which must not be in the set yet.
func (ss *subSet) add(sub *Subscription) {
	if ss.big == nil && len(ss.small) < subSetSmall {
		ss.small = append(ss.small, sub)
		return
	}
	if ss.big == nil {
		ss.big = make(map[string]*Subscription, 2*subSetSmall)
		for _, s := range ss.small {
			ss.big[s.id] = s
		}
		ss.small = nil
	}
	ss.big[sub.id] = sub
}

// remove takes out the subscription with the client id, if there is one.
func (ss *subSet) remove(id string) {
	if ss.big != nil {
		delete(ss.big, id)
		return
	}
	for i, sub := range ss.small {
		if sub.id == id {
			ss.small = slices.Delete(ss.small, i, i+1) // clears the freed slot for the GC
			return
		}
	}
}

// all calls yield for every subscription, in no set order, until it
// returns false. The set must not change during the walk.
func (ss *subSet) all(yield func(*Subscription) bool) {
	if ss.big != nil {
		for _, sub := range ss.big {
			if !yield(sub) {
				return
			}
		}
		return
	}
	for _, sub := range ss.small {
		if !yield(sub) {
			return
		}
	}
}
