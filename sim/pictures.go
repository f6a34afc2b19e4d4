package sim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// PictureStore keeps the robot's pictures outside the bus: a picture event
// carries only the picture's hash and the URL Put returns (docs/events.md,
// "picture").
type PictureStore interface {
	// Put stores data under its reference ("sha256:<hex>") and returns the
	// URL the bytes can be fetched from.
	Put(ctx context.Context, ref, contentType string, data []byte) (string, error)
}

// pictureName is the file name of a picture: its hash and an extension.
func pictureName(ref, contentType string) (string, error) {
	hex, ok := strings.CutPrefix(ref, "sha256:")
	if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", fmt.Errorf("pictures: %q is not a sha256: reference", ref)
	}
	ext := ".bin"
	switch contentType {
	case "image/png":
		ext = ".png"
	case "image/jpeg":
		ext = ".jpg"
	case "image/webp":
		ext = ".webp"
	}
	return hex + ext, nil
}

// DirPictures writes pictures into a directory, one file per picture named
// by its hash, and returns file:// URLs to them, or, with BaseURL, that URL
// followed by the file name (for a web server that serves the directory:
// Handler).
type DirPictures struct {
	Dir string
	// BaseURL, when set, is where the directory is served
	// ("http://sim.example:8090/pictures/").
	BaseURL string
}

// Put writes the picture unless a file of its name exists (the name is the
// content's hash, so it would hold the same bytes).
func (d *DirPictures) Put(_ context.Context, ref, contentType string, data []byte) (string, error) {
	name, err := pictureName(ref, contentType)
	if err != nil {
		return "", err
	}
	path := filepath.Join(d.Dir, name)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(d.Dir, 0o755); err != nil {
			return "", fmt.Errorf("pictures: %w", err)
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return "", fmt.Errorf("pictures: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return "", fmt.Errorf("pictures: %w", err)
		}
	}
	if d.BaseURL != "" {
		return strings.TrimSuffix(d.BaseURL, "/") + "/" + name, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("pictures: %w", err)
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String(), nil
}

// Handler serves the directory's pictures (GET /{hash}.png); mount it
// under BaseURL's path with http.StripPrefix.
func (d *DirPictures) Handler() http.Handler { return http.FileServer(http.Dir(d.Dir)) }

// MemoryPictures keeps pictures in memory, for tests and demos, and
// returns URLs under BaseURL (default "http://localhost/pictures/"); its
// Handler serves them. It keeps at most Max pictures (default 1000),
// forgetting the oldest. Safe for concurrent use.
type MemoryPictures struct {
	BaseURL string
	Max     int

	mu    sync.Mutex
	data  map[string][]byte // by file name
	order []string
}

// Put keeps the picture.
func (m *MemoryPictures) Put(_ context.Context, ref, contentType string, data []byte) (string, error) {
	name, err := pictureName(ref, contentType)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		m.data = map[string][]byte{}
	}
	if _, ok := m.data[name]; !ok {
		m.data[name] = data
		m.order = append(m.order, name)
		max := m.Max
		if max <= 0 {
			max = 1000
		}
		for len(m.order) > max {
			delete(m.data, m.order[0])
			m.order = m.order[1:]
		}
	}
	base := m.BaseURL
	if base == "" {
		base = "http://localhost/pictures/"
	}
	return strings.TrimSuffix(base, "/") + "/" + name, nil
}

// Get returns a picture by its file name ("<hex>.png").
func (m *MemoryPictures) Get(name string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.data[name]
	return b, ok
}

// Len returns the number of pictures kept.
func (m *MemoryPictures) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.data)
}

// ServeHTTP serves GET /{name}.
func (m *MemoryPictures) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, ok := m.Get(strings.TrimPrefix(r.URL.Path, "/"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", http.DetectContentType(b))
	w.Write(b)
}
