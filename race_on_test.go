//go:build race

package main

// raceDetector: the tests run under the race detector, several times slower;
// tests that need work to take a while size it down.
const raceDetector = true
