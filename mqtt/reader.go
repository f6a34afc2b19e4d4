package mqtt

import (
	"errors"
	"io"
	"sync"
)

// Reader decodes MQTT packets from a byte stream, such as a network
// connection. It reads ahead into its own buffer, so one system call usually
// brings in many small packets.
//
// The Packet returned by ReadPacket, and every byte slice in it, may alias the
// Reader's buffers and is valid only until the next call to ReadPacket. A
// PUBLISH without properties is decoded without allocating once the Reader
// has seen its topic.
type Reader struct {
	// Version is the protocol level used to decode every packet but CONNECT;
	// 0 means not known yet, when only CONNECT is accepted. The caller sets it
	// after CONNECT.
	Version byte
	// MaxPacketSize is the largest packet accepted, in bytes including the
	// fixed header; 0 means the protocol's own limit. A larger packet is
	// refused with PacketTooLarge before its body is read.
	MaxPacketSize uint32
	// ReuseAcks decodes PUBACK, PUBREC, PUBREL and PUBCOMP into one Ack that
	// the Reader reuses, as it reuses one Publish: a connection then reads
	// acknowledgements without allocating. The caller must not keep an Ack
	// past the next ReadPacket.
	ReuseAcks bool

	r      io.Reader
	buf    []byte
	start  int // first unread byte
	end    int // end of buffered data
	size   int // size of the large buffers taken from the pool
	small  []byte
	pooled *[]byte  // the pooled buffer buf is, if any
	pub    *Publish // reused, made on first use: the Reader of a connection that only receives stays small
	ack    *Ack     // likewise, with ReuseAcks
	topics map[string]string
}

// smallSize is the buffer an idle Reader keeps: enough for the small packets
// of a quiet connection. A Reader that receives more switches to a large
// buffer from a pool and gives it back when it has decoded all it read, so
// idle connections hold little memory and busy ones read in large batches.
const smallSize = 256

var bufPools sync.Map // size → *sync.Pool of *[]byte

func pool(size int) *sync.Pool {
	if p, ok := bufPools.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := bufPools.LoadOrStore(size, &sync.Pool{New: func() any { b := make([]byte, size); return &b }})
	return p.(*sync.Pool)
}

// maxInterned bounds the topic intern cache; it is emptied when full.
const maxInterned = 4096

// NewReader returns a Reader that reads from r in batches of up to size
// bytes (at least 1 KiB).
func NewReader(r io.Reader, size int) *Reader {
	rd := &Reader{r: r, size: max(size, 1024)}
	rd.small = make([]byte, smallSize)
	rd.buf = rd.small
	return rd
}

// grow moves the unread bytes into a buffer that can hold at least n bytes:
// a pooled large buffer, or for a packet larger than that one of its own.
func (r *Reader) grow(n int) {
	var nb []byte
	var pooled *[]byte
	if n <= r.size {
		pooled = pool(r.size).Get().(*[]byte)
		nb = *pooled
	} else {
		nb = make([]byte, n)
	}
	r.end = copy(nb, r.buf[r.start:r.end])
	r.start = 0
	r.release()
	r.buf, r.pooled = nb, pooled
}

// release gives a pooled buffer back.
func (r *Reader) release() {
	if r.pooled != nil {
		pool(r.size).Put(r.pooled)
		r.pooled = nil
	}
}

// fill reads more bytes until at least n bytes are buffered from start.
func (r *Reader) fill(n int) error {
	if r.end-r.start >= n {
		return nil
	}
	if n > len(r.buf)-r.start {
		if n > len(r.buf) || len(r.buf) == smallSize {
			r.grow(n)
		} else {
			r.end = copy(r.buf, r.buf[r.start:r.end])
			r.start = 0
		}
	}
	for r.end-r.start < n {
		m, err := r.r.Read(r.buf[r.end:])
		r.end += m
		if r.end == len(r.buf) && len(r.buf) == smallSize && err == nil {
			r.grow(smallSize + 1) // the peer is sending more: read in large batches
		}
		if err != nil {
			if r.end-r.start >= n {
				return nil
			}
			if errors.Is(err, io.EOF) && r.end > r.start {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// ReadPacket reads and decodes the next packet. Protocol violations are
// returned as *Error with the reason code the specification asks for; I/O
// errors are returned as they are. A CONNECT with an unsupported protocol
// level is returned together with its error.
func (r *Reader) ReadPacket() (Packet, error) {
	if r.start == r.end {
		// Everything read has been decoded: the caller is done with the
		// previous packet, so the large buffer can go back to the pool.
		r.start, r.end = 0, 0
		if len(r.buf) != smallSize {
			r.release()
			r.buf = r.small
		}
	}
	if err := r.fill(2); err != nil {
		return nil, err
	}
	// The Remaining Length is at most four bytes [MQTT-1.5.5-1].
	rl, i := 0, 1
	for ; ; i++ {
		if i > 4 {
			return nil, Errorf(MalformedPacket, "remaining length longer than four bytes")
		}
		if err := r.fill(i + 1); err != nil {
			return nil, err
		}
		c := r.buf[r.start+i]
		rl |= int(c&0x7F) << (7 * (i - 1))
		if c&0x80 == 0 {
			break
		}
	}
	total := i + 1 + rl
	if r.MaxPacketSize > 0 && total > int(r.MaxPacketSize) {
		return nil, Errorf(PacketTooLarge, "packet of %d bytes exceeds the maximum of %d", total, r.MaxPacketSize)
	}
	if err := r.fill(total); err != nil {
		return nil, err
	}
	h := r.buf[r.start]
	body := r.buf[r.start+i+1 : r.start+total : r.start+total]
	r.start += total
	return decodeBody(h, body, r.Version, r)
}

// intern returns the topic in b as a string, allocating only for topics not
// seen recently.
func (r *Reader) intern(b []byte) string {
	if s, ok := r.topics[string(b)]; ok {
		return s
	}
	if r.topics == nil || len(r.topics) >= maxInterned {
		r.topics = make(map[string]string)
	}
	s := string(b)
	r.topics[s] = s
	return s
}

// Buffered reports how many bytes are read ahead and not yet decoded.
func (r *Reader) Buffered() int { return r.end - r.start }

// PacketBuffered reports whether a whole packet is buffered, so that the
// next ReadPacket returns without reading from the underlying reader.
func (r *Reader) PacketBuffered() bool {
	b := r.buf[r.start:r.end]
	rl := 0
	for i := 1; i < len(b) && i <= 4; i++ {
		rl |= int(b[i]&0x7F) << (7 * (i - 1))
		if b[i]&0x80 == 0 {
			return len(b) >= i+1+rl
		}
	}
	// Too short to say, or a malformed length, which ReadPacket reports
	// without reading.
	return len(b) > 4
}
