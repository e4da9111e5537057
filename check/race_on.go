//go:build race

package check

// raceDetector is true in a build with -race, whose shadow memory grows
// with every goroutine and allocation the process ever had and never
// shrinks, so RSS there says nothing about the service.
const raceDetector = true
