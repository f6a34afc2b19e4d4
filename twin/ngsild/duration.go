package ngsild

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// ParseDuration parses an ISO 8601 duration as aggrPeriodDuration takes it
// (clause 6.3.19: P[n]Y[n]M[n]DT[n]H[n]M[n]S or P[n]W). Only fixed lengths
// are accepted: weeks, days (24 hours), hours, minutes and seconds (a
// decimal fraction on the last); years and months, whose length depends
// on the calendar, are refused. PT0S and P0D are zero: the whole range.
func ParseDuration(s string) (time.Duration, error) {
	if len(s) < 2 || s[0] != 'P' {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration (P1D, PT15M, P1W)", s)
	}
	var total float64
	inTime, any, lastFrac := false, false, false
	i := 1
	for i < len(s) {
		if s[i] == 'T' {
			if inTime {
				return 0, fmt.Errorf("%q: a second T", s)
			}
			inTime = true
			i++
			if i == len(s) {
				return 0, fmt.Errorf("%q: nothing after T", s)
			}
			continue
		}
		j := i
		for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == ',') {
			j++
		}
		if j == i || j == len(s) {
			return 0, fmt.Errorf("%q is not an ISO 8601 duration", s)
		}
		num := []byte(s[i:j])
		for k := range num {
			if num[k] == ',' {
				num[k] = '.'
			}
		}
		n, err := strconv.ParseFloat(string(num), 64)
		if err != nil || math.IsInf(n, 0) {
			return 0, fmt.Errorf("%q: %q is not a number", s, s[i:j])
		}
		if lastFrac {
			return 0, fmt.Errorf("%q: only the last element may have a fraction", s)
		}
		lastFrac = n != math.Trunc(n)
		var unit time.Duration
		switch c := s[j]; {
		case !inTime && c == 'Y', !inTime && c == 'M':
			return 0, errors.New("years and months have no fixed length: give weeks, days, hours, minutes or seconds")
		case !inTime && c == 'W':
			unit = 7 * 24 * time.Hour
		case !inTime && c == 'D':
			unit = 24 * time.Hour
		case inTime && c == 'H':
			unit = time.Hour
		case inTime && c == 'M':
			unit = time.Minute
		case inTime && c == 'S':
			unit = time.Second
		default:
			return 0, fmt.Errorf("%q: unexpected %q", s, c)
		}
		total += n * float64(unit)
		if total > float64(100*365*24*time.Hour) {
			return 0, fmt.Errorf("%q is longer than a hundred years", s)
		}
		any = true
		i = j + 1
	}
	if !any {
		return 0, fmt.Errorf("%q has no elements", s)
	}
	return time.Duration(total), nil
}
