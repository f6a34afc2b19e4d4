package broker

import "time"

// queue is a FIFO of deliveries kept in a ring buffer that doubles when full
// and is freed once it has been empty and not grown for a second (a small one
// is kept), so an idle session holds little memory for it and a busy one does
// not resize while it works. The zero value is an empty queue.
type queue struct {
	buf    []delivery
	head   int   // index of the first element
	n      int   // number of elements
	bytes  int   // payload bytes held
	grewAt int64 // when the buffer last grew, in Unix nanoseconds
}

// Len reports the number of queued deliveries.
func (q *queue) Len() int { return q.n }

// push appends d at the back; now is the time in Unix nanoseconds. A
// delivery queued before (read back from the store, or moved between queues)
// keeps the time it was first queued.
func (q *queue) push(d delivery, now int64) {
	if q.n == len(q.buf) {
		q.resize(max(8, 2*len(q.buf)))
		q.grewAt = now
	}
	if d.enqueued == 0 {
		d.enqueued = now
	}
	q.buf[(q.head+q.n)%len(q.buf)] = d
	q.n++
	q.bytes += len(d.msg.Payload)
}

// front returns a pointer to the first element; the queue must not be empty.
func (q *queue) front() *delivery { return &q.buf[q.head] }

// pop removes and returns the first element; the queue must not be empty.
func (q *queue) pop() delivery {
	d := q.buf[q.head]
	q.buf[q.head] = delivery{} // drop references for the collector
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	q.bytes -= len(d.msg.Payload)
	if q.n == 0 {
		q.head = 0
	}
	return d
}

// trim frees a large buffer of an empty queue that has not grown for a
// second, so a session that is busy keeps its buffer and an idle one does not.
func (q *queue) trim(now int64) {
	if q.n == 0 && len(q.buf) > 64 && now-q.grewAt > int64(time.Second) {
		q.buf = nil
	}
}

// drain removes every element, calling fn for each in order, and frees the
// buffer.
func (q *queue) drain(fn func(delivery)) {
	for q.n > 0 {
		fn(q.pop())
	}
	q.buf = nil
}

func (q *queue) resize(size int) {
	nb := make([]delivery, size)
	for i := 0; i < q.n; i++ {
		nb[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf = nb
	q.head = 0
}
