package live

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Uploader uploads pictures to a robot service's HTTP API (POST
// /api/v1/robot/pictures), as a robot does before it publishes the picture
// event. Its Put has the signature of sim.PictureStore, so the simulator's
// robot can use it.
type Uploader struct {
	// BaseURL is the node's HTTP address ("http://127.0.0.1:8080").
	BaseURL string
	// Client is the HTTP client (default http.DefaultClient); Header is
	// added to every request (Authorization).
	Client *http.Client
	Header http.Header
}

// Put uploads data and returns the picture's absolute URL. ref, when set,
// must be the bytes' hash ("sha256:<hex>").
func (u *Uploader) Put(ctx context.Context, ref, contentType string, data []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(u.BaseURL, "/")+APIPrefix+"pictures", bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	for k, v := range u.Header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	c := u.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("picture upload: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("picture upload: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var res UploadResult
	if err := json.Unmarshal(body, &res); err != nil {
		return "", fmt.Errorf("picture upload: %w", err)
	}
	if ref != "" && res.Hash != ref {
		return "", fmt.Errorf("picture upload: stored as %s, want %s", res.Hash, ref)
	}
	url := res.URL
	if strings.HasPrefix(url, "/") {
		url = strings.TrimSuffix(u.BaseURL, "/") + url
	}
	return url, nil
}
