package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// fileStore keeps objects as files under a root directory. Put writes a
// temporary dot-file in the object's directory and renames it, so readers see
// whole objects only; List and Get never show those temporary files.
type fileStore struct{ root string }

func openFile(u *url.URL) (Store, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("%w: file URL with host %q: use file:///absolute/path", ErrBadURL, u.Host)
	}
	if u.RawQuery != "" {
		return nil, fmt.Errorf("%w: file URL takes no query", ErrBadURL)
	}
	dir := filepath.Clean(u.Path)
	if u.Path == "" || !filepath.IsAbs(dir) || dir == "/" {
		return nil, fmt.Errorf("%w: file URL needs an absolute directory other than /, e.g. file:///var/lib/dionysia/recordings", ErrBadURL)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating storage directory: %w", err)
	}
	return &fileStore{root: dir}, nil
}

// NewFile returns a store in dir (created if missing).
func NewFile(dir string) (Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return openFile(&url.URL{Scheme: "file", Path: abs})
}

func (s *fileStore) String() string { return "file://" + s.root }

func (s *fileStore) path(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

func (s *fileStore) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(p)+".tmp*")
	if err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	tmp := f.Name()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("read %d bytes, expected %d", n, size)
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("storing %s: %w", key, err)
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (s *fileStore) info(key, p string) (Info, error) {
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && st.IsDir()) {
		return Info{}, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Info{}, err
	}
	return Info{Key: key, Size: st.Size(), ModTime: st.ModTime(), ContentType: mime.TypeByExtension(path.Ext(key))}, nil
}

func (s *fileStore) Stat(ctx context.Context, key string) (Info, error) {
	p, err := s.path(key)
	if err != nil {
		return Info{}, err
	}
	return s.info(key, p)
}

func (s *fileStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, Info, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, Info{}, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Info{}, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, Info{}, err
	}
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		_ = f.Close()
		return nil, Info{}, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	info := Info{Key: key, Size: st.Size(), ModTime: st.ModTime(), ContentType: mime.TypeByExtension(path.Ext(key))}
	if offset < 0 {
		offset = 0
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, Info{}, err
	}
	var r io.Reader = f
	if length > 0 {
		r = io.LimitReader(f, length)
	}
	return readCloser{r, f}, info, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

func (s *fileStore) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	s.pruneDirs(filepath.Dir(p))
	return nil
}

// pruneDirs removes empty directories from dir up to (not including) the root.
func (s *fileStore) pruneDirs(dir string) {
	for dir != s.root && strings.HasPrefix(dir, s.root+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

func (s *fileStore) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if err := checkPrefix(prefix, false); err != nil {
		return 0, err
	}
	objs, err := s.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	dir := filepath.Join(s.root, filepath.FromSlash(strings.TrimSuffix(prefix, "/")))
	if err := os.RemoveAll(dir); err != nil {
		return 0, fmt.Errorf("deleting %s: %w", prefix, err)
	}
	s.pruneDirs(filepath.Dir(dir))
	return len(objs), nil
}

func (s *fileStore) List(ctx context.Context, prefix string) ([]Info, error) {
	if err := checkPrefix(prefix, true); err != nil {
		return nil, err
	}
	start := filepath.Join(s.root, filepath.FromSlash(strings.TrimSuffix(prefix, "/")))
	var out []Info
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() && p != start {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if info, err := s.info(key, p); err == nil {
			out = append(out, info)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *fileStore) Ping(ctx context.Context) error {
	f, err := os.CreateTemp(s.root, ".ping*")
	if err != nil {
		return fmt.Errorf("storage directory %s is not writable: %w", s.root, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}
