package packager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// WriteFileAtomic writes data to a temporary file in path's directory and
// renames it over path, so readers see either the old or the new content,
// never a partial file. The temporary name starts with a dot so directory
// listings and HTTP servers that hide dot files never expose it.
//
// It does not fsync: the files are ephemeral live media that a crashed worker
// would not resume from, and rename alone already gives readers atomicity.
func WriteFileAtomic(path string, data []byte) error {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("creating temp file for %s: %w", base, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// RemoveAfter waits for delay (the stream's retention after it ended), then
// deletes dir and everything in it. It returns ctx.Err() without deleting
// anything when ctx ends first. The caller owns the timer's goroutine.
func RemoveAfter(ctx context.Context, dir string, delay time.Duration) error {
	if err := checkRemovable(dir); err != nil {
		return err
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing stream directory: %w", err)
	}
	return nil
}

// Remove deletes the packager's directory now. Call it after Close.
func (p *Packager) Remove() error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if !closed {
		return errors.New("removing stream directory: packager not closed")
	}
	if err := checkRemovable(p.cfg.Dir); err != nil {
		return err
	}
	if err := os.RemoveAll(p.cfg.Dir); err != nil {
		return fmt.Errorf("removing stream directory: %w", err)
	}
	return nil
}

func checkRemovable(dir string) error {
	clean := filepath.Clean(dir)
	if dir == "" || clean == "/" || clean == "." || clean == filepath.VolumeName(clean)+string(filepath.Separator) {
		return fmt.Errorf("refusing to remove %q", dir)
	}
	return nil
}
