package sidecar

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Deadlines of the tests' polls; generous, since CI shares two cores.
const (
	testTimeout = 30 * time.Second
	testPoll    = 20 * time.Millisecond
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
