//go:build !race

package whoisdump_test

const raceDetector = false
