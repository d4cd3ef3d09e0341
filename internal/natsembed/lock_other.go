//go:build !unix

package natsembed

import "os"

// tryLock does not lock on this platform: the data directory is not protected against a
// second server.
func tryLock(*os.File) (bool, error) { return true, nil }

func unlock(*os.File) error { return nil }
