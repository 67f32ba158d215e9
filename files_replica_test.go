package main

import "stompbox/internal/files"

// flightWaiting is how many callers wait for the flight of key in g (0
// when none runs); tests use it to know that concurrent callers have
// joined.
func flightWaiting(g *files.FlightGroup, key string) int {
	g.Mu.Lock()
	defer g.Mu.Unlock()
	if f, ok := g.Flights[key]; ok {
		return f.Waiters
	}
	return 0
}
