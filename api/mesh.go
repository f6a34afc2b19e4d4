package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/service"
)

// sessionBody is a session in the broker's routes.
type sessionBody struct {
	ID            string             `json:"id"`
	Connected     bool               `json:"connected"`
	Client        *clientBody        `json:"client,omitempty"`
	Expiry        uint32             `json:"expiry_seconds"`
	Offline       time.Time          `json:"offline_since,omitzero"`
	Queued        int                `json:"queued"`
	Inflight      int                `json:"inflight"`
	Count         int                `json:"subscription_count"`
	Subscriptions []subscriptionBody `json:"subscriptions,omitempty"`
}

// subscriptionBody is a subscription of a session.
type subscriptionBody struct {
	Filter            string `json:"filter"`
	QoS               byte   `json:"qos"`
	NoLocal           bool   `json:"no_local,omitempty"`
	RetainAsPublished bool   `json:"retain_as_published,omitempty"`
	RetainHandling    byte   `json:"retain_handling,omitempty"`
	Identifier        uint32 `json:"identifier,omitempty"`
}

func sessionOf(si broker.SessionInfo) sessionBody {
	sb := sessionBody{ID: si.ID, Connected: si.Connected, Expiry: si.Expiry, Queued: si.Queued,
		Inflight: si.Inflight, Count: si.SubscriptionCount}
	if !si.Offline.IsZero() {
		sb.Offline = si.Offline.UTC()
	}
	if si.Connected {
		c := clientOf(si.Client)
		sb.Client = &c
	}
	if si.Subscriptions != nil {
		sb.Subscriptions = make([]subscriptionBody, 0, len(si.Subscriptions))
		for _, x := range si.Subscriptions {
			sb.Subscriptions = append(sb.Subscriptions, subscriptionBody(x))
		}
	}
	return sb
}

// sessions answers GET /api/v1/broker/sessions: the network clients'
// sessions, connected or not, without their subscriptions.
func (s *server) sessions(w http.ResponseWriter, r *http.Request) {
	l := s.o.Broker.Sessions()
	out := make([]sessionBody, 0, len(l))
	for _, si := range l {
		out = append(out, sessionOf(si))
	}
	writeJSON(w, http.StatusOK, struct {
		Sessions []sessionBody `json:"sessions"`
	}{out})
}

// session answers GET /api/v1/broker/sessions/{id}: one session with its
// subscriptions.
func (s *server) session(w http.ResponseWriter, r *http.Request) {
	si, ok := s.o.Broker.Session(r.PathValue("id"))
	if !ok {
		service.WriteProblem(w, r, http.StatusNotFound, "no session "+strconv.Quote(r.PathValue("id")))
		return
	}
	sb := sessionOf(si)
	if sb.Subscriptions == nil {
		sb.Subscriptions = []subscriptionBody{}
	}
	writeJSON(w, http.StatusOK, sb)
}

// listeners answers GET /api/v1/broker/listeners: the node's listeners,
// each with the number of clients connected through it.
func (s *server) listeners(w http.ResponseWriter, r *http.Request) {
	var ls []Listener
	if s.o.Listeners != nil {
		ls = slices.Clone(s.o.Listeners())
	}
	n := map[string]int{}
	for _, c := range s.o.Broker.Clients() {
		n[c.Listener]++
	}
	for i := range ls {
		ls[i].Clients = n[ls[i].Name]
	}
	if ls == nil {
		ls = []Listener{}
	}
	slices.SortFunc(ls, func(a, b Listener) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, struct {
		Listeners []Listener `json:"listeners"`
	}{ls})
}

// mesh answers GET /api/v1/mesh: the mesh's links, their state, queues
// and lag (mesh.Status).
func (s *server) mesh(w http.ResponseWriter, r *http.Request) {
	if s.o.Mesh == nil {
		service.WriteProblem(w, r, http.StatusNotFound, "this node is in no mesh")
		return
	}
	s.o.Mesh.ServeHTTP(w, r)
}
