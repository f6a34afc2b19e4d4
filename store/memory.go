package store

import (
	"slices"
	"sync"
)

// Memory is a Store in memory. Its zero value is ready to use; a broker
// restarted on the same Memory finds what the previous one stored.
type Memory struct {
	mu       sync.Mutex
	sessions map[string]Session
	retained map[string]Message
}

// NewMemory returns an empty Memory store.
func NewMemory() *Memory { return &Memory{} }

// PutSession implements Store.
func (m *Memory) PutSession(s Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions == nil {
		m.sessions = make(map[string]Session)
	}
	s.Subscriptions = slices.Clone(s.Subscriptions)
	m.sessions[s.ClientID] = s
	return nil
}

// DeleteSession implements Store.
func (m *Memory) DeleteSession(clientID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, clientID)
	return nil
}

// Sessions implements Store.
func (m *Memory) Sessions() ([]Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		s.Subscriptions = slices.Clone(s.Subscriptions)
		out = append(out, s)
	}
	return out, nil
}

// PutRetained implements Store.
func (m *Memory) PutRetained(msg Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.retained == nil {
		m.retained = make(map[string]Message)
	}
	msg.Payload = slices.Clone(msg.Payload)
	m.retained[msg.Topic] = msg
	return nil
}

// DeleteRetained implements Store.
func (m *Memory) DeleteRetained(topic string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.retained, topic)
	return nil
}

// Retained implements Store.
func (m *Memory) Retained() ([]Message, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Message, 0, len(m.retained))
	for _, msg := range m.retained {
		out = append(out, msg)
	}
	return out, nil
}
