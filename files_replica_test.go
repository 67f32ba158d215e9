package main

// flightWaiting is how many callers wait for the flight of key in g (0
// when none runs); tests use it to know that concurrent callers have
// joined.
func flightWaiting(g *flightGroup, key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.flights[key]; ok {
		return f.waiters
	}
	return 0
}
