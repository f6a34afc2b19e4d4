package sim

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// The radio of a simulated LoRaWAN uplink: path loss from distance, the
// signal a gateway reports, the spreading factor a network server's
// adaptive data rate settles on, the EU868 channel and the time on air.

// Path loss: the log-distance model PL(d) = B + 10·n·log10(d/d0) with the
// parameters Petäjäjärvi et al. measured for LoRa at 868 MHz with a node on
// the ground and a base station antenna 24 m up ("On the Coverage of
// LPWANs: Range Evaluation and Channel Attenuation Model for LoRa
// Technology", ITST 2015): B = 128.95 dB at d0 = 1 km, n = 2.32, shadowing
// with σ = 7.8 dB. The log-distance form with log-normal shadowing is the
// textbook one (Rappaport, Wireless Communications, 2nd ed., §4.9).
const (
	PathLossB     = 128.95 // dB at PathLossD0M
	PathLossD0M   = 1000.0 // m
	PathLossN     = 2.32
	ShadowSigmaDB = 7.8
)

// Radio constants. A device sends with 14 dBm (the EU868 default maximum
// EIRP is 16 dBm, LoRaWAN Regional Parameters RP002, EU863-870; 14 dBm is
// what most sensors use); the noise floor of a 125 kHz channel is
// −174 dBm/Hz + 10·log10(125 kHz) + a 6 dB receiver noise figure
// = −117 dBm; a gateway reports an SNR of at most +12 dB; the per-uplink
// fading around a link's mean is 2 dB (an estimate).
const (
	DeviceTxPowerDBm = 14.0
	NoiseFloorDBm    = -174 + 50.97 + 6 // 10·log10(125000) = 50.97
	MaxSNRdB         = 12.0
	FadingSigmaDB    = 2.0
	// ADRMarginDB is the margin above the demodulation floor the
	// simulated network server keeps when it picks a device's spreading
	// factor (an estimate within the 10 to 15 dB network servers use).
	ADRMarginDB = 10.0
	// LoRaBandwidthHz is the bandwidth of every EU868 uplink simulated.
	LoRaBandwidthHz = 125000
)

// RequiredSNR returns the lowest SNR at which a LoRa receiver demodulates a
// spreading factor sf (7–12) in dB: −7.5 dB at SF7 down to −20 dB at SF12
// in 2.5 dB steps (Semtech SX1276/77/78/79 data sheet, table 13).
func RequiredSNR(sf int) float64 { return -7.5 - 2.5*float64(sf-7) }

// PathLossDB returns the mean path loss over distance m metres (at least
// 10 m, so that a device on top of its gateway stays finite).
func PathLossDB(m float64) float64 {
	return PathLossB + 10*PathLossN*math.Log10(math.Max(m, 10)/PathLossD0M)
}

// SNRFromRSSI returns the SNR a gateway reports for a signal of rssi dBm:
// the signal over the noise floor, capped at MaxSNRdB.
func SNRFromRSSI(rssi float64) float64 { return math.Min(rssi-NoiseFloorDBm, MaxSNRdB) }

// ChooseSF returns the spreading factor the network server's adaptive data
// rate settles on for a device whose best gateway sees a mean SNR of snr:
// the smallest from 7 to 12 that leaves ADRMarginDB above its demodulation
// floor, else 12.
func ChooseSF(snr float64) int {
	for sf := 7; sf < 12; sf++ {
		if snr-RequiredSNR(sf) >= ADRMarginDB {
			return sf
		}
	}
	return 12
}

// EU868DataRate returns the EU868 data rate index of a spreading factor at
// 125 kHz: DR0 is SF12, DR5 SF7 (LoRaWAN Regional Parameters, EU863-870).
func EU868DataRate(sf int) int { return 12 - sf }

// EU868Channels are the uplink frequencies of The Things Network's EU868
// frequency plan (EU_863_870_TTN): the three default channels of the
// LoRaWAN Regional Parameters (868.1, 868.3, 868.5 MHz) and five more.
var EU868Channels = [8]uint32{868100000, 868300000, 868500000, 867100000, 867300000, 867500000, 867700000, 867900000}

// LoRaWAN frame overhead around the FRMPayload of an uplink without FOpts:
// MHDR (1), DevAddr (4), FCtrl (1), FCnt (2), FPort (1) and MIC (4) bytes
// (LoRaWAN 1.0.4, §4).
const LoRaWANOverhead = 13

// Airtime returns the time on air of a LoRa frame with a PHY payload of
// payloadLen bytes, by the formula of Semtech's application note AN1200.13
// ("LoRa Modem Designer's Guide") and the SX1276 data sheet (§4.1.1.7):
//
//	Tsym = 2^SF / BW
//	Tpreamble = (npreamble + 4.25)·Tsym
//	nsym = 8 + max(ceil((8·PL − 4·SF + 28 + 16·CRC − 20·IH) / (4·(SF − 2·DE)))·(CR + 4), 0)
//	T = Tpreamble + nsym·Tsym
//
// for LoRaWAN uplinks: 8 preamble symbols, an explicit header (IH = 0), a
// payload CRC (CRC = 1), coding rate 4/5 (CR = 1), and low data rate
// optimisation (DE = 1) when a symbol lasts 16 ms or more (SF11 and SF12
// at 125 kHz). It returns 0 for a spreading factor outside 6–12 or a
// bandwidth of 0.
func Airtime(sf, bandwidthHz, payloadLen int) time.Duration {
	if sf < 6 || sf > 12 || bandwidthHz <= 0 || payloadLen < 0 {
		return 0
	}
	const preamble, crc, ih, cr = 8, 1, 0, 1
	tsym := float64(int(1)<<sf) / float64(bandwidthHz) // seconds
	de := 0
	if tsym >= 0.016 {
		de = 1
	}
	num := float64(8*payloadLen - 4*sf + 28 + 16*crc - 20*ih)
	den := float64(4 * (sf - 2*de))
	nsym := 8 + math.Max(math.Ceil(num/den)*(cr+4), 0)
	t := (preamble+4.25)*tsym + nsym*tsym
	return time.Duration(math.Round(t * 1e9))
}

// crockford is the alphabet of ULIDs (Crockford's base 32).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// ulid writes a ULID (github.com/ulid/spec: a 48-bit millisecond time and
// 80 bits of randomness in 26 characters of Crockford's base 32), the form
// of The Things Stack's correlation ids, with the randomness hashed from
// (seed, key) so that it is reproducible.
func ulid(t time.Time, seed uint64, key int64) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	h1, h2 := hash(seed, stULID, key), hash(seed, stULID, ^key)
	binary.BigEndian.PutUint16(b[6:], uint16(h1))
	binary.BigEndian.PutUint64(b[8:], h2)
	// 128 bits as 26 characters of 5 bits, the first holding 3 bits.
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// uuid writes a version 4 UUID (RFC 9562) whose random bits are hashed from
// (seed, key): ChirpStack's deduplication ids and profile ids.
func uuid(seed uint64, key int64) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hash(seed, stUUID, key))
	binary.BigEndian.PutUint64(b[8:], hash(seed, stUUID, ^key))
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
