//go:build chaos && race

package chaos

// raceEnabled says whether the tests run with the race detector; the worker binary is then
// built with it too.
const raceEnabled = true
