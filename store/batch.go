package store

import "encoding/binary"

// Batch is a list of writes applied atomically by Store.Apply. Keys and
// values are encoded as they are added, into one buffer, so a Batch that is
// Reset and reused does not allocate in steady state. A Batch is not safe for
// concurrent use; its zero value is an empty batch.
type Batch struct {
	buf []byte
	ops []op
	// cancelled counts the writes withdrawn by Cancel.
	cancelled int
}

// Op is the kind of one write in a Batch.
type Op byte

// The kinds of writes.
const (
	OpSet         Op = iota // set key to value
	OpDelete                // delete key
	OpDeleteRange           // delete every key in [key, value)

	// opCancelled marks a write withdrawn by Cancel: Each skips it.
	opCancelled Op = 0xff
)

// op is one write: key and value are offsets into Batch.buf.
type op struct {
	kind          Op
	key, keyEnd   int
	value, valEnd int
}

// Len reports the number of writes in the batch that are to be applied:
// those added and not cancelled.
func (b *Batch) Len() int { return len(b.ops) - b.cancelled }

// Cancelled reports the number of writes withdrawn by Cancel.
func (b *Batch) Cancelled() int { return b.cancelled }

// Size reports the encoded size of the batch in bytes, cancelled writes
// included (their bytes stay until Reset).
func (b *Batch) Size() int { return len(b.buf) }

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	b.buf = b.buf[:0]
	b.ops = b.ops[:0]
	b.cancelled = 0
}

// Mark returns the position that the next write added to the batch takes:
// pass it to Cancel to withdraw that write.
func (b *Batch) Mark() int { return len(b.ops) }

// Cancel withdraws the write at position pos (see Mark): the batch is then as
// if it had never been added, and Each and Len skip it. It reports false, and
// changes nothing, when there is no write at pos (the batch was Reset since)
// or it was cancelled already. The caller must know that no later write of
// the batch depends on it: cancelling a PutEntry whose entry is deleted later
// in the same batch is sound, cancelling one that a later write replaces is
// not (the replacement would stay).
func (b *Batch) Cancel(pos int) bool {
	if pos < 0 || pos >= len(b.ops) || b.ops[pos].kind == opCancelled {
		return false
	}
	b.ops[pos].kind = opCancelled
	b.cancelled++
	return true
}

// Each calls fn for every write in order, skipping cancelled ones; for
// OpDeleteRange, key and value are the lower and upper bounds. key and value
// alias the batch's memory.
func (b *Batch) Each(fn func(kind Op, key, value []byte) error) error {
	for _, o := range b.ops {
		if o.kind == opCancelled {
			continue
		}
		if err := fn(o.kind, b.buf[o.key:o.keyEnd], b.buf[o.value:o.valEnd]); err != nil {
			return err
		}
	}
	return nil
}

// commit records the write whose key is buf[start:kEnd] and value
// buf[kEnd:]; if err is set the batch is rolled back to start instead.
func (b *Batch) commit(kind Op, start, kEnd int, err error) error {
	if err != nil {
		b.buf = b.buf[:start]
		return err
	}
	b.ops = append(b.ops, op{kind: kind, key: start, keyEnd: kEnd, value: kEnd, valEnd: len(b.buf)})
	return nil
}

func (b *Batch) delRange(lower, upper []byte) {
	start := len(b.buf)
	b.buf = append(b.buf, lower...)
	mid := len(b.buf)
	b.buf = append(b.buf, upper...)
	b.commit(OpDeleteRange, start, mid, nil)
}

// PutSession stores s, replacing the session record with the same client
// identifier. Its queue, inbound identifiers and will are kept.
func (b *Batch) PutSession(s *Session) error {
	start := len(b.buf)
	b.buf = appendSessionKey(b.buf, s.ClientID)
	k := len(b.buf)
	var err error
	b.buf, err = encodeSession(b.buf, s)
	return b.commit(OpSet, start, k, err)
}

// DeleteSession removes the session of clientID with its queue and inbound
// identifiers (not its will, which may outlive it).
func (b *Batch) DeleteSession(clientID string) {
	start := len(b.buf)
	b.buf = appendSessionKey(b.buf, clientID)
	b.commit(OpDelete, start, len(b.buf), nil)
	b.delRange(clientRange(kindQueue, clientID))
	b.delRange(clientRange(kindInbound, clientID))
	start = len(b.buf)
	b.buf = appendLinkSeqKey(b.buf, clientID)
	b.commit(OpDelete, start, len(b.buf), nil)
}

// PutEntry stores e in clientID's queue, replacing the entry with the same
// Seq (as when a QoS 2 delivery becomes Released).
func (b *Batch) PutEntry(clientID string, e *Entry) error {
	start := len(b.buf)
	b.buf = appendQueueKey(b.buf, clientID, e.Seq)
	k := len(b.buf)
	var err error
	b.buf, err = encodeEntry(b.buf, e)
	return b.commit(OpSet, start, k, err)
}

// DeleteEntry removes entry seq from clientID's queue.
func (b *Batch) DeleteEntry(clientID string, seq uint64) {
	start := len(b.buf)
	b.buf = appendQueueKey(b.buf, clientID, seq)
	b.commit(OpDelete, start, len(b.buf), nil)
}

// PutInbound records that clientID's QoS 2 PUBLISH with packet identifier
// pid was received and awaits PUBREL [MQTT-4.3.3-10].
func (b *Batch) PutInbound(clientID string, pid uint16) {
	start := len(b.buf)
	b.buf = appendInboundKey(b.buf, clientID, pid)
	k := len(b.buf)
	b.buf = sealValue(b.buf, k)
	b.commit(OpSet, start, k, nil)
}

// PutLinkSeq records the sequence number of the last message a mesh link's
// session clientID received from its peer, so that the peer's resend of a
// message already taken in is recognised, also after a restart.
func (b *Batch) PutLinkSeq(clientID string, seq uint64) {
	start := len(b.buf)
	b.buf = appendLinkSeqKey(b.buf, clientID)
	k := len(b.buf)
	b.buf = binary.BigEndian.AppendUint64(b.buf, seq)
	b.buf = sealValue(b.buf, k)
	b.commit(OpSet, start, k, nil)
}

// DeleteInbound removes the record of an inbound QoS 2 exchange.
func (b *Batch) DeleteInbound(clientID string, pid uint16) {
	start := len(b.buf)
	b.buf = appendInboundKey(b.buf, clientID, pid)
	b.commit(OpDelete, start, len(b.buf), nil)
}

// PutRetained stores m as the retained message of its topic.
func (b *Batch) PutRetained(m *Message) error {
	start := len(b.buf)
	b.buf = appendRetainedKey(b.buf, m.Topic)
	k := len(b.buf)
	var err error
	b.buf, err = encodeRetained(b.buf, m)
	return b.commit(OpSet, start, k, err)
}

// DeleteRetained removes the retained message of topic.
func (b *Batch) DeleteRetained(topic string) {
	start := len(b.buf)
	b.buf = appendRetainedKey(b.buf, topic)
	b.commit(OpDelete, start, len(b.buf), nil)
}

// PutWill stores w, replacing the will of the same client.
func (b *Batch) PutWill(w *Will) error {
	start := len(b.buf)
	b.buf = appendWillKey(b.buf, w.ClientID)
	k := len(b.buf)
	var err error
	b.buf, err = encodeWill(b.buf, w)
	return b.commit(OpSet, start, k, err)
}

// DeleteWill removes the will of clientID.
func (b *Batch) DeleteWill(clientID string) {
	start := len(b.buf)
	b.buf = appendWillKey(b.buf, clientID)
	b.commit(OpDelete, start, len(b.buf), nil)
}

// Append adds every write of o to b, after b's own.
func (b *Batch) Append(o *Batch) {
	base := len(b.buf)
	b.buf = append(b.buf, o.buf...)
	for _, x := range o.ops {
		b.ops = append(b.ops, op{kind: x.kind, key: x.key + base, keyEnd: x.keyEnd + base, value: x.value + base, valEnd: x.valEnd + base})
	}
	b.cancelled += o.cancelled
}
