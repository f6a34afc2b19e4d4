package broker

// queue is a FIFO of deliveries kept in a ring buffer that doubles when full
// and is freed when drained (a small one is kept), so an idle session holds
// little memory for it and a busy one does not resize while it works. The
// zero value is an empty queue.
type queue struct {
	buf   []delivery
	head  int // index of the first element
	n     int // number of elements
	bytes int // payload bytes held
}

// Len reports the number of queued deliveries.
func (q *queue) Len() int { return q.n }

// push appends d at the back.
func (q *queue) push(d delivery) {
	if q.n == len(q.buf) {
		q.resize(max(8, 2*len(q.buf)))
	}
	q.buf[(q.head+q.n)%len(q.buf)] = d
	q.n++
	q.bytes += len(d.msg.Payload)
}

// pushFront puts d in front of the first element (used to requeue).
func (q *queue) pushFront(d delivery) {
	if q.n == len(q.buf) {
		q.resize(max(8, 2*len(q.buf)))
	}
	q.head = (q.head - 1 + len(q.buf)) % len(q.buf)
	q.buf[q.head] = d
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
		// Drained: keep a small buffer for the next burst, free a large one.
		q.head = 0
		if len(q.buf) > 64 {
			q.buf = nil
		}
	}
	return d
}

// drain removes every element, calling fn for each in order.
func (q *queue) drain(fn func(delivery)) {
	for q.n > 0 {
		fn(q.pop())
	}
}

func (q *queue) resize(size int) {
	nb := make([]delivery, size)
	for i := 0; i < q.n; i++ {
		nb[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf = nb
	q.head = 0
}
