package mqtt

import (
	"errors"
	"io"
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

	r      io.Reader
	buf    []byte
	start  int // first unread byte
	end    int // end of buffered data
	min    int // the buffer size to return to after a large packet
	pub    Publish
	topics map[string]string
}

// maxInterned bounds the topic intern cache; it is emptied when full.
const maxInterned = 4096

// NewReader returns a Reader that reads from r with an initial buffer of size
// bytes (at least 64).
func NewReader(r io.Reader, size int) *Reader {
	size = max(size, 64)
	return &Reader{r: r, buf: make([]byte, size), min: size}
}

// fill reads more bytes until at least n bytes are buffered from start.
func (r *Reader) fill(n int) error {
	if r.end-r.start >= n {
		return nil
	}
	if n > len(r.buf)-r.start {
		if n > len(r.buf) {
			nb := make([]byte, max(n, 2*len(r.buf)))
			r.end = copy(nb, r.buf[r.start:r.end])
			r.buf = nb
		} else {
			r.end = copy(r.buf, r.buf[r.start:r.end])
		}
		r.start = 0
	}
	for r.end-r.start < n {
		m, err := r.r.Read(r.buf[r.end:])
		r.end += m
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
		r.start, r.end = 0, 0
		if len(r.buf) > 4*r.min {
			r.buf = make([]byte, r.min) // give back the memory of a large packet
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
	return decodeBody(h, body, r.Version, &r.pub, r)
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
