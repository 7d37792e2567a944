//go:build race

package whoisdump_test

// raceDetector: the race detector slows scanning about tenfold, so the
// memory test reads a smaller dump.
const raceDetector = true
