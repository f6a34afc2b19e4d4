package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/topic"
)

// clientBody is a client in the broker's routes.
type clientBody struct {
	ID            string    `json:"id"`
	User          string    `json:"user,omitempty"`
	Tenant        string    `json:"tenant,omitempty"`
	Remote        string    `json:"remote"`
	Listener      string    `json:"listener"`
	Protocol      int       `json:"protocol_version"`
	Since         time.Time `json:"connected_since"`
	Subscriptions int       `json:"subscriptions"`
}

func clientOf(ci broker.ClientInfo) clientBody {
	return clientBody{ID: ci.ID, User: ci.User, Tenant: ci.Tenant, Remote: ci.Remote, Listener: ci.Listener,
		Protocol: int(ci.Version), Since: ci.Since.UTC(), Subscriptions: ci.Subscriptions}
}

func (s *server) clients(w http.ResponseWriter, r *http.Request) {
	l := s.o.Broker.Clients()
	out := make([]clientBody, 0, len(l))
	for _, ci := range l {
		out = append(out, clientOf(ci))
	}
	writeJSON(w, http.StatusOK, struct {
		Clients []clientBody `json:"clients"`
	}{out})
}

func (s *server) client(w http.ResponseWriter, r *http.Request) {
	ci, ok := s.o.Broker.Client(r.PathValue("id"))
	if !ok {
		service.WriteProblem(w, r, http.StatusNotFound, "no client "+strconv.Quote(r.PathValue("id"))+" is connected")
		return
	}
	writeJSON(w, http.StatusOK, clientOf(ci))
}

func (s *server) disconnect(w http.ResponseWriter, r *http.Request) {
	if !s.o.Broker.Disconnect(r.PathValue("id"), "disconnected by "+userOf(r)) {
		service.WriteProblem(w, r, http.StatusNotFound, "no client "+strconv.Quote(r.PathValue("id"))+" is connected")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// previewSize is the length of a retained payload's preview.
const previewSize = 256

// retainedBody is a retained message in the broker's routes.
type retainedBody struct {
	Topic   string `json:"topic"`
	Size    int    `json:"payload_size"`
	Preview string `json:"payload_preview"`
	Binary  bool   `json:"payload_binary,omitempty"`
	QoS     byte   `json:"qos"`
}

// preview is the first bytes of a payload as text, or base64 when they are
// not UTF-8.
func preview(p []byte) (string, bool) {
	if len(p) > previewSize {
		p = p[:previewSize]
		for i := 0; i < utf8.UTFMax && len(p) > 0 && !utf8.Valid(p); i++ {
			p = p[:len(p)-1]
		}
	}
	if utf8.Valid(p) {
		return string(p), false
	}
	return encodeBase64(p), true
}

func (s *server) retained(w http.ResponseWriter, r *http.Request) {
	filter := r.URL.Query().Get("filter")
	if filter == "" {
		filter = "#"
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			service.WriteProblem(w, r, http.StatusBadRequest, "limit is a number from 1 to 10000")
			return
		}
		limit = n
	}
	ms, err := s.o.Broker.Retained(filter, limit)
	if err != nil {
		service.WriteProblem(w, r, http.StatusBadRequest, "filter: "+err.Error())
		return
	}
	out := make([]retainedBody, 0, len(ms))
	for _, m := range ms {
		p, bin := preview(m.Payload)
		out = append(out, retainedBody{Topic: m.Topic, Size: len(m.Payload), Preview: p, Binary: bin, QoS: m.QoS})
	}
	writeJSON(w, http.StatusOK, struct {
		Retained []retainedBody `json:"retained"`
	}{out})
}

func (s *server) clearRetained(w http.ResponseWriter, r *http.Request) {
	ok, err := s.o.Broker.ClearRetained(r.PathValue("topic"))
	switch {
	case err != nil:
		service.WriteProblem(w, r, http.StatusBadRequest, err.Error())
	case !ok:
		service.WriteProblem(w, r, http.StatusNotFound, "no retained message on "+strconv.Quote(r.PathValue("topic")))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// publishBody is the body of POST /api/v1/broker/publish.
type publishBody struct {
	Topic   string `json:"topic"`
	Payload string `json:"payload"`
	QoS     byte   `json:"qos"`
	Retain  bool   `json:"retain"`
}

// publish publishes a message as the caller: the ACL decides as for the
// caller's MQTT client; topics starting with $ are refused.
func (s *server) publish(w http.ResponseWriter, r *http.Request) {
	var b publishBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		service.WriteProblem(w, r, http.StatusBadRequest, "the body is {\"topic\", \"payload\", \"qos\", \"retain\"}: "+err.Error())
		return
	}
	if err := topic.ValidName(b.Topic); err != nil || strings.HasPrefix(b.Topic, "$") {
		service.WriteProblem(w, r, http.StatusBadRequest, "topic: not a topic name a client may publish to")
		return
	}
	if b.QoS > 2 {
		service.WriteProblem(w, r, http.StatusBadRequest, "qos is 0, 1 or 2")
		return
	}
	if id := identityOf(r); id != nil && s.o.Authorizer != nil && !s.o.Authorizer.For(id).Allow(auth.Publish, b.Topic) {
		service.WriteProblem(w, r, http.StatusForbidden, "the ACL does not let "+id.User+" publish to "+strconv.Quote(b.Topic))
		return
	}
	// An in-process client for this one message: the broker counts no
	// lasting client for the API.
	l, err := s.o.Broker.NewLocal("citymesh-api-" + randomToken()[:12])
	if err != nil {
		service.WriteProblem(w, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer l.Close()
	m := &broker.Message{Topic: b.Topic, Payload: []byte(b.Payload), QoS: b.QoS, Retain: b.Retain}
	n, err := l.PublishContext(r.Context(), m)
	if err != nil {
		if errors.Is(err, r.Context().Err()) {
			return
		}
		service.WriteProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Queued int `json:"queued"`
	}{n})
}
