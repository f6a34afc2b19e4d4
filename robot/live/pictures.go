package live

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/citymesh/citymesh/service"
)

// pictureMeta is what the store keeps of a picture besides its bytes.
type pictureMeta struct {
	Hash        string    `json:"hash"` // sha256:<hex>
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	Stored      time.Time `json:"stored"`
}

// Errors of pictureStore.put, each an HTTP status of its own.
var (
	errTooBig   = errors.New("picture too large")
	errNotImage = errors.New("not an image")
	errFull     = errors.New("picture storage full")
)

// pictureStore keeps pictures by their SHA-256: the bytes in files of a
// directory (one per picture, written to a temporary file, synced and
// renamed, so a picture is whole or absent) or, without a directory, in
// the service's state; the metadata always in the state.
type pictureStore struct {
	st  service.State
	cfg PicturesConfig
	now func() time.Time

	mu        sync.Mutex
	metas     map[string]pictureMeta // hex → meta
	total     int64
	elsewhere map[string]string // hex → URL of a picture event whose bytes are not here
}

const (
	stPicMeta    = "meta/"
	stPicBlob    = "blob/"
	maxElsewhere = 10000
)

func openPictures(st service.State, cfg PicturesConfig, now func() time.Time) (*pictureStore, error) {
	p := &pictureStore{st: st, cfg: cfg, now: now, metas: map[string]pictureMeta{}, elsewhere: map[string]string{}}
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("robot pictures: %w", err)
		}
	}
	err := st.Scan(stPicMeta, func(k string, v []byte) error {
		var m pictureMeta
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		p.metas[strings.TrimPrefix(k, stPicMeta)] = m
		p.total += m.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("robot pictures: load: %w", err)
	}
	return p, nil
}

// imageTypes are the picture types accepted, as sniffed from the bytes
// (the WHATWG MIME Sniffing algorithm of net/http.DetectContentType).
var imageTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/webp": true, "image/gif": true}

// put stores data and returns its metadata and whether it is new. The
// type is the one the bytes show; declared, when set, must be an image
// type or application/octet-stream.
func (p *pictureStore) put(data []byte, declared string) (pictureMeta, bool, error) {
	if int64(len(data)) > p.cfg.MaxBytes {
		return pictureMeta{}, false, fmt.Errorf("%w: %d bytes, at most %d", errTooBig, len(data), p.cfg.MaxBytes)
	}
	if len(data) == 0 {
		return pictureMeta{}, false, fmt.Errorf("%w: the body is empty", errNotImage)
	}
	sniffed := http.DetectContentType(data)
	if !imageTypes[sniffed] {
		return pictureMeta{}, false, fmt.Errorf("%w: the bytes are %s; want PNG, JPEG, WebP or GIF", errNotImage, sniffed)
	}
	if d, _, _ := strings.Cut(declared, ";"); d != "" && d != "application/octet-stream" && !strings.HasPrefix(strings.TrimSpace(d), "image/") {
		return pictureMeta{}, false, fmt.Errorf("%w: Content-Type %s", errNotImage, declared)
	}
	sum := sha256.Sum256(data)
	hx := hex.EncodeToString(sum[:])
	p.mu.Lock()
	defer p.mu.Unlock()
	if m, ok := p.metas[hx]; ok {
		return m, false, nil
	}
	if p.total+int64(len(data)) > p.cfg.MaxTotalBytes {
		return pictureMeta{}, false, fmt.Errorf("%w: %d of %d bytes used", errFull, p.total, p.cfg.MaxTotalBytes)
	}
	m := pictureMeta{Hash: "sha256:" + hx, ContentType: sniffed, Size: int64(len(data)), Stored: p.now().UTC()}
	mv, _ := json.Marshal(m)
	var b service.Batch
	if p.cfg.Dir != "" {
		if err := writeFileSynced(p.path(hx), data); err != nil {
			return pictureMeta{}, false, fmt.Errorf("robot pictures: %w", err)
		}
	} else {
		b.Set(p.st, stPicBlob+hx, data)
	}
	b.Set(p.st, stPicMeta+hx, mv)
	if err := p.st.Apply(&b); err != nil {
		return pictureMeta{}, false, fmt.Errorf("robot pictures: %w", err)
	}
	p.metas[hx] = m
	p.total += m.Size
	delete(p.elsewhere, hx)
	return m, true, nil
}

func (p *pictureStore) path(hx string) string { return filepath.Join(p.cfg.Dir, hx[:2], hx) }

// writeFileSynced writes data to path whole: a temporary file, synced,
// renamed, and the directory synced.
func writeFileSynced(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// get returns a picture's metadata and bytes.
func (p *pictureStore) get(hx string) (pictureMeta, []byte, error) {
	p.mu.Lock()
	m, ok := p.metas[hx]
	p.mu.Unlock()
	if !ok {
		return pictureMeta{}, nil, os.ErrNotExist
	}
	if p.cfg.Dir != "" {
		data, err := os.ReadFile(p.path(hx))
		return m, data, err
	}
	data, ok, err := p.st.Get(stPicBlob + hx)
	if err == nil && !ok {
		err = os.ErrNotExist
	}
	return m, data, err
}

// external remembers where a picture event says a picture is, for the
// pictures whose bytes the service does not hold.
func (p *pictureStore) external(hash, url string) {
	hx, ok := strings.CutPrefix(hash, "sha256:")
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, here := p.metas[hx]; here {
		return
	}
	if len(p.elsewhere) >= maxElsewhere {
		clear(p.elsewhere)
	}
	p.elsewhere[hx] = url
}

// where returns the URL a picture event gave for a picture not held here.
func (p *pictureStore) where(hx string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.elsewhere[hx]
	return u, ok
}

// prune removes the pictures stored longer than the retention ago, except
// those of incidents still open; it returns how many it removed.
func (p *pictureStore) prune(keep map[string]bool) (int, error) {
	if p.cfg.Retention <= 0 {
		return 0, nil
	}
	limit := p.now().Add(-p.cfg.Retention)
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for hx, m := range p.metas {
		if !m.Stored.Before(limit) || keep[hx] {
			continue
		}
		var b service.Batch
		b.Delete(p.st, stPicMeta+hx)
		if p.cfg.Dir == "" {
			b.Delete(p.st, stPicBlob+hx)
		}
		if err := p.st.Apply(&b); err != nil {
			return n, err
		}
		if p.cfg.Dir != "" {
			os.Remove(p.path(hx))
		}
		delete(p.metas, hx)
		p.total -= m.Size
		n++
	}
	return n, nil
}

// usage returns the number of pictures and their bytes.
func (p *pictureStore) usage() (int, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.metas), p.total
}

// housekeeping prunes pictures and final incidents at start and every
// hour.
func (r *run) housekeeping(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if ret := r.s.cfg.IncidentRetention; ret > 0 {
			if n, err := r.book.prune(r.env.Now().Add(-ret)); err != nil {
				r.env.Log.Warn("robot service: prune incidents", "err", err)
			} else if n > 0 {
				r.env.Log.Info("robot service: pruned incidents", "incidents", n)
			}
		}
		keep := map[string]bool{}
		for _, inc := range r.book.list(func(i *Incident) bool { return i.State.Open() }) {
			for _, pr := range inc.Pictures {
				keep[strings.TrimPrefix(pr.Hash, "sha256:")] = true
			}
		}
		if n, err := r.pics.prune(keep); err != nil {
			r.env.Log.Warn("robot service: prune pictures", "err", err)
		} else if n > 0 {
			r.env.Log.Info("robot service: pruned pictures", "pictures", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PicturePath is the HTTP path of a picture: /api/v1/robot/pictures/{hex}.
func PicturePath(hash string) string {
	return APIPrefix + "pictures/" + strings.TrimPrefix(hash, "sha256:")
}

// pictureURL is the URL of a picture in events: PublicURL and its path.
func (s *Service) pictureURL(hash string) string {
	return strings.TrimSuffix(s.cfg.PublicURL, "/") + PicturePath(hash)
}
