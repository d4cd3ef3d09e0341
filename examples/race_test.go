//go:build race

package examples

// raceEnabled: the tests run with the race detector, so the binaries they build get it too.
const raceEnabled = true
