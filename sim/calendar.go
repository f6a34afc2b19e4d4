package sim

import (
	"time"
	_ "time/tzdata" // schedules run in Europe/Berlin on hosts without zoneinfo
)

// Berlin is the campus's time zone, Europe/Berlin. Schedules (opening
// hours, lectures, setpoints) are local wall-clock times in it.
var Berlin = mustLoad("Europe/Berlin")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic("sim: time zone " + name + ": " + err.Error())
	}
	return loc
}

// DayType classifies a local calendar day for occupancy.
type DayType int

// Day types. The zero value is a lecture-period working day.
const (
	// LectureDay is a working day (Monday to Friday) in a lecture period.
	LectureDay DayType = iota
	// BreakDay is a working day outside the lecture periods.
	BreakDay
	// Saturday is a Saturday that is not a public holiday.
	Saturday
	// Sunday is a Sunday or a public holiday.
	Sunday
	// Closure is a working day between Christmas and New Year, when the
	// campus is closed (24–31 December).
	Closure
)

var dayTypeNames = [...]string{"lecture", "break", "saturday", "sunday", "closure"}

// String returns the day type's name.
func (d DayType) String() string {
	if d < 0 || int(d) >= len(dayTypeNames) {
		return "DayType(?)"
	}
	return dayTypeNames[d]
}

// Easter returns the date of Easter Sunday in the Gregorian calendar (the
// anonymous algorithm published by Meeus, "Astronomical Algorithms",
// chapter 8, after Jones 1876 and Butcher), as month and day.
func Easter(year int) (time.Month, int) {
	a := year % 19
	b := year / 100
	c := year % 100
	d := b / 4
	e := b % 4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i := c / 4
	k := c % 4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return time.Month(month), day
}

// Holiday returns the name of the public holiday in Baden-Württemberg on
// the given date, or "" when it is none. The holidays are those of the
// Feiertagsgesetz Baden-Württemberg (FTG) §1: New Year, Epiphany, Good
// Friday, Easter Monday, 1 May, Ascension, Whit Monday, Corpus Christi,
// German Unity Day, All Saints' Day and the two Christmas days; and
// Reformation Day in 2017 only (a one-off national holiday for the 500th
// anniversary).
func Holiday(year int, month time.Month, day int) string {
	switch {
	case month == time.January && day == 1:
		return "Neujahr"
	case month == time.January && day == 6:
		return "Heilige Drei Könige"
	case month == time.May && day == 1:
		return "Tag der Arbeit"
	case month == time.October && day == 3:
		return "Tag der Deutschen Einheit"
	case month == time.November && day == 1:
		return "Allerheiligen"
	case month == time.December && day == 25:
		return "1. Weihnachtstag"
	case month == time.December && day == 26:
		return "2. Weihnachtstag"
	case year == 2017 && month == time.October && day == 31:
		return "Reformationstag"
	}
	em, ed := Easter(year)
	easter := time.Date(year, em, ed, 12, 0, 0, 0, time.UTC)
	this := time.Date(year, month, day, 12, 0, 0, 0, time.UTC)
	switch int(this.Sub(easter).Hours() / 24) {
	case -2:
		return "Karfreitag"
	case 1:
		return "Ostermontag"
	case 39:
		return "Christi Himmelfahrt"
	case 50:
		return "Pfingstmontag"
	case 60:
		return "Fronleichnam"
	}
	return ""
}

// InLecturePeriod reports whether a date lies in a lecture period. The
// campus's universities lecture roughly from 1 October to 7 February
// (winter semester, without 23 December to 6 January) and from 15 March to
// 15 July (summer semester). These dates are an estimate of typical German
// university semesters, not the campus's published calendar.
func InLecturePeriod(month time.Month, day int) bool {
	md := int(month)*100 + day
	switch {
	case md >= 1001 && md <= 1222:
		return true
	case md >= 107 && md <= 207:
		return true
	case md >= 315 && md <= 715:
		return true
	}
	return false
}

// DayTypeOf returns the type of the local calendar day of t in loc (nil
// means Berlin).
func DayTypeOf(t time.Time, loc *time.Location) DayType {
	if loc == nil {
		loc = Berlin
	}
	y, m, d := t.In(loc).Date()
	return dayTypeOfDate(y, m, d)
}

func dayTypeOfDate(y int, m time.Month, d int) DayType {
	wd := time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Weekday()
	switch {
	case Holiday(y, m, d) != "" || wd == time.Sunday:
		return Sunday
	case wd == time.Saturday:
		return Saturday
	case m == time.December && d >= 24:
		return Closure
	case InLecturePeriod(m, d):
		return LectureDay
	}
	return BreakDay
}

// localClock returns the local calendar date, the day's index since the
// Unix epoch in local days, and the hour of the day as a fraction (0–24),
// for t in loc.
func localClock(t time.Time, loc *time.Location) (y int, m time.Month, d int, dayIndex int64, hour float64) {
	lt := t.In(loc)
	y, m, d = lt.Date()
	dayIndex = time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
	hour = float64(lt.Hour()) + float64(lt.Minute())/60 + (float64(lt.Second())+float64(lt.Nanosecond())/1e9)/3600
	return y, m, d, dayIndex, hour
}
