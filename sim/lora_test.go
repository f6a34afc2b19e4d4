package sim

import (
	"math"
	"regexp"
	"testing"
	"time"
)

// TestAirtime checks Semtech's time-on-air formula against worked values:
// the consumed airtime of The Things Stack's documented example uplink
// (SF9, 11 bytes of application payload: 0.205824 s) and values worked by
// hand from the formula for the other spreading factors.
func TestAirtime(t *testing.T) {
	for _, c := range []struct {
		sf, bw, pl int
		want       time.Duration
	}{
		{9, 125000, 24, 205824 * time.Microsecond},   // TTS's example "consumed_airtime": "0.205824s"
		{7, 125000, 24, 61696 * time.Microsecond},    // 12.25 + 48 symbols of 1.024 ms
		{12, 125000, 24, 1482752 * time.Microsecond}, // 12.25 + 33 symbols of 32.768 ms (low data rate optimisation)
		{12, 125000, 13, 1155072 * time.Microsecond}, // an empty frame: 12.25 + 23 symbols
		{10, 125000, 13, 288768 * time.Microsecond},  // 12.25 + 28 symbols of 8.192 ms
		{7, 250000, 24, 30848 * time.Microsecond},    // twice the bandwidth, half the time
	} {
		if got := Airtime(c.sf, c.bw, c.pl); got != c.want {
			t.Errorf("Airtime(SF%d, %d Hz, %d B) = %v, want %v", c.sf, c.bw, c.pl, got, c.want)
		}
	}
	for _, bad := range [][3]int{{5, 125000, 10}, {13, 125000, 10}, {7, 0, 10}, {7, 125000, -1}} {
		if got := Airtime(bad[0], bad[1], bad[2]); got != 0 {
			t.Errorf("Airtime%v = %v, want 0", bad, got)
		}
	}
	// Longer payloads never take less time.
	for sf := 7; sf <= 12; sf++ {
		prev := time.Duration(0)
		for pl := 13; pl < 255; pl++ {
			a := Airtime(sf, 125000, pl)
			if a < prev {
				t.Fatalf("SF%d: %d bytes take %v, %d bytes %v", sf, pl, a, pl-1, prev)
			}
			prev = a
		}
	}
}

func TestRadio(t *testing.T) {
	if got := PathLossDB(1000); math.Abs(got-128.95) > 1e-9 {
		t.Errorf("path loss at 1 km = %v, want B = 128.95", got)
	}
	if got := PathLossDB(10000) - PathLossDB(1000); math.Abs(got-23.2) > 1e-9 {
		t.Errorf("path loss per decade = %v, want 10·n = 23.2", got)
	}
	if PathLossDB(0) != PathLossDB(10) {
		t.Error("distances below 10 m are not clamped")
	}
	for sf, want := range map[int]float64{7: -7.5, 9: -12.5, 12: -20} {
		if got := RequiredSNR(sf); got != want {
			t.Errorf("RequiredSNR(%d) = %v, want %v", sf, got, want)
		}
	}
	for _, c := range []struct {
		snr float64
		sf  int
	}{{12, 7}, {2.5, 7}, {2.4, 8}, {0, 8}, {-5, 10}, {-7.5, 11}, {-7.6, 12}, {-20, 12}, {-30, 12}} {
		if got := ChooseSF(c.snr); got != c.sf {
			t.Errorf("ChooseSF(%v) = %d, want %d", c.snr, got, c.sf)
		}
	}
	if EU868DataRate(12) != 0 || EU868DataRate(7) != 5 {
		t.Error("EU868 data rates")
	}
	if SNRFromRSSI(-90) != MaxSNRdB || math.Abs(SNRFromRSSI(-120)+2.97) > 1e-9 {
		t.Errorf("SNR: %v %v", SNRFromRSSI(-90), SNRFromRSSI(-120))
	}
}

func TestIDs(t *testing.T) {
	at := time.Date(2026, 5, 12, 6, 2, 36, 0, time.UTC)
	u := ulid(at, 1, 2)
	if !regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`).MatchString(u) || u != ulid(at, 1, 2) || u == ulid(at, 1, 3) {
		t.Errorf("ulid %q", u)
	}
	// The first ten characters are the time: later times sort later.
	if v := ulid(at.Add(time.Millisecond), 1, 2); v[:10] <= u[:10] {
		t.Errorf("ulids do not sort by time: %s, %s", u, v)
	}
	id := uuid(1, 2)
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) || id != uuid(1, 2) || id == uuid(1, 3) {
		t.Errorf("uuid %q", id)
	}
}

func TestExchangeDetail(t *testing.T) {
	at := time.Date(2026, 5, 12, 9, 40, 0, 0, time.FixedZone("", 7200))
	s := ExchangeDetail("el-b01-main", at, []string{"1-0:1.8.0 old_final=13338.77 new_start=0", "1-0:2.8.0 old_final=5.5 new_start=2.25"})
	meter, when, regs, err := ParseExchangeDetail(s)
	if err != nil || meter != "el-b01-main" || !when.Equal(at) || len(regs) != 2 || regs[0] != (ExchangeRecord{"1-0:1.8.0", 13338.77, 0}) || regs[1].NewStart != 2.25 {
		t.Fatalf("%q: %s %s %+v %v", s, meter, when, regs, err)
	}
	for _, bad := range []string{
		"", "meter x", "meter x exchanged at yesterday: 1-0:1.8.0 old_final=1 new_start=2",
		"meter x exchanged at 2026-05-12T09:40:00Z", "meter x exchanged at 2026-05-12T09:40:00Z: 1-0:1.8.0 old_final=1",
		"meter x exchanged at 2026-05-12T09:40:00Z: 1-0:1.8.0 old_final=NaN new_start=2",
		"meter x exchanged at 2026-05-12T09:40:00Z: 1-0:1.8.0 new_start=1 old_final=2",
	} {
		if _, _, _, err := ParseExchangeDetail(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
