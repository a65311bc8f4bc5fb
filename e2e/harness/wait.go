package harness

import (
	"fmt"
	"time"
)

// WaitUntil calls cond every interval until it says done, and returns nil; it returns cond's
// error as soon as cond gives one, and an error once bound has passed. The bound is there
// for slow machines, not a timing: nothing passes or fails by how soon cond holds.
func WaitUntil(bound, interval time.Duration, cond func() (done bool, err error)) error {
	deadline := time.Now().Add(bound)
	for {
		done, err := cond()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %v", bound)
		}
		time.Sleep(interval)
	}
}
