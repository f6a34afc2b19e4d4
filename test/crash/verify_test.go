package crash_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// result is the outcome of the final verification: summary lines to log and
// failure messages, each a self-contained paragraph.
type result struct {
	summary  []string
	failures []string
}

// verify compares what the subscribers received with what the publishers saw
// acknowledged. runs is the number of broker runs; every run but the last
// ended with SIGKILL during the workload, and drained says whether the last
// one was given the time to deliver everything.
func verify(pubs []*publisher, subs []*subscriber, runs int, drained bool) result {
	var res result
	ps := make([]pubSnapshot, len(pubs))
	for i, p := range pubs {
		ps[i] = p.snapshot()
	}
	res.summary = append(res.summary, publisherSummary(ps, 1), publisherSummary(ps, 2))
	for _, sub := range subs {
		s := sub.snapshot()
		res.summary = append(res.summary, checkSubscriber(&res, ps, s, runs, drained))
	}
	return res
}

// publisherSummary sums up the publishers at one QoS.
func publisherSummary(ps []pubSnapshot, qos byte) string {
	var n, published, acked, unacked, noMatch, resentPub, resentRel, connects, drops int
	refused := map[string]int{}
	for _, p := range ps {
		if p.qos != qos {
			continue
		}
		n++
		published += p.stats.published
		acked += p.stats.acked
		noMatch += p.stats.noMatch
		resentPub += p.stats.resentPublish
		resentRel += p.stats.resentPubrel
		connects += p.stats.connects
		drops += p.stats.drops
		for _, st := range p.status {
			if st == msgUnacked {
				unacked++
			}
		}
		for code, c := range p.stats.refused {
			refused[ackName(code)] += c
		}
	}
	refusals := ""
	if len(refused) > 0 {
		refusals = fmt.Sprintf(" %v", refused)
	}
	return fmt.Sprintf("QoS %d: %d publishers published %d messages: %d acknowledged, %d never acknowledged, %d refused%s, %d No matching subscribers; after reconnects resent %d PUBLISH and %d PUBREL; %d connections, %d dropped by the publishers",
		qos, n, published, acked, unacked, sum(refused), refusals, noMatch, resentPub, resentRel, connects, drops)
}

// checkSubscriber checks one subscriber's records against the publishers',
// appends its failures to res and returns its summary line.
func checkSubscriber(res *result, ps []pubSnapshot, s subSnapshot, runs int, drained bool) string {
	var (
		lost, wantTotal          int
		lostParts                []string
		lostByRun                = map[uint16]int{}
		dupParts, orderParts     []string
		phantomParts             []string
		dup2, disorder, phantoms int
		unackedGot, refusedGot   int
		lostToReuse              int
	)
	for pi, p := range ps {
		counts := s.counts[pi]
		count := func(seq int) int {
			if seq < len(counts) {
				return int(counts[seq])
			}
			return 0
		}
		var missing, dups []int
		for seq := 1; seq < len(p.status); seq++ {
			switch p.status[seq] {
			case msgAcked:
				wantTotal++
				if count(seq) == 0 {
					missing = append(missing, seq)
					lostByRun[p.ackRun[seq]]++
					if s.dropped[msgKey{pi, seq}] {
						lostToReuse++
					}
				}
			case msgUnacked:
				if count(seq) > 0 {
					unackedGot++
				}
			case msgRefused, msgNoMatch:
				if count(seq) > 0 {
					refusedGot++
				}
			}
			if p.qos == 2 && count(seq) > 1 {
				dups = append(dups, seq)
			}
		}
		var never []int
		for seq := len(p.status); seq < len(counts); seq++ {
			if counts[seq] > 0 {
				never = append(never, seq)
			}
		}
		if len(missing) > 0 {
			lost += len(missing)
			lostParts = append(lostParts, fmt.Sprintf("%s: %d missing, seq %s", p.name, len(missing), seqRanges(missing)))
		}
		if len(dups) > 0 {
			dup2 += len(dups)
			ex := make([]string, 0, maxExamples)
			for _, seq := range dups[:min(len(dups), maxExamples)] {
				ex = append(ex, fmt.Sprintf("seq %d ×%d", seq, count(seq)))
			}
			dupParts = append(dupParts, fmt.Sprintf("%s: %d messages, %s", p.name, len(dups), strings.Join(ex, ", ")))
		}
		if len(never) > 0 {
			phantoms += len(never)
			phantomParts = append(phantomParts, fmt.Sprintf("%s: seq %s, but it published only up to seq %d", p.name, seqRanges(never), len(p.status)-1))
		}
		var ex []string
		n, highest := 0, 0
		for i, seq := range s.firsts[pi] {
			if seq < highest {
				n++
				if len(ex) < maxExamples {
					ex = append(ex, fmt.Sprintf("seq %d first arrived after seq %d (arrival #%d)", seq, highest, i+1))
				}
			}
			highest = max(highest, seq)
		}
		if n > 0 {
			disorder += n
			orderParts = append(orderParts, fmt.Sprintf("%s: %d messages out of order: %s", p.name, n, strings.Join(ex, "; ")))
		}
	}

	name := "subscriber " + s.name
	if lost > 0 {
		reuse := ""
		if lostToReuse > 0 {
			reuse = fmt.Sprintf("; %d of them arrived with a packet identifier still held by an unreleased QoS 2 exchange and were taken for duplicates, see \"packet identifier reused\"", lostToReuse)
		}
		res.failures = append(res.failures, fmt.Sprintf("LOSS: %s never received %d of %d acknowledged messages (%s%s):\n\t%s",
			name, lost, wantTotal, lostRuns(lostByRun, runs, drained), reuse, strings.Join(lostParts, "\n\t")))
	}
	if dup2 > 0 {
		res.failures = append(res.failures, fmt.Sprintf("DUPLICATE QoS 2: %s received %d QoS 2 messages more than once:\n\t%s", name, dup2, strings.Join(dupParts, "\n\t")))
	}
	if disorder > 0 {
		res.failures = append(res.failures, fmt.Sprintf("ORDER: %s received %d messages for the first time after a later one of the same publisher:\n\t%s", name, disorder, strings.Join(orderParts, "\n\t")))
	}
	if phantoms > 0 {
		res.failures = append(res.failures, fmt.Sprintf("PHANTOM: %s received %d messages that were never published:\n\t%s", name, phantoms, strings.Join(phantomParts, "\n\t")))
	}
	if len(s.pending) > 0 {
		ids := slices.Sorted(maps.Keys(s.pending))
		ex := make([]string, 0, maxExamples)
		for _, id := range ids[:min(len(ids), maxExamples)] {
			ex = append(ex, fmt.Sprintf("packet id %d (%s)", id, s.pending[id]))
		}
		res.failures = append(res.failures, fmt.Sprintf("UNRELEASED QoS 2: %s still holds %d QoS 2 exchanges the broker never released with PUBREL: %s", name, len(ids), strings.Join(ex, ", ")))
	}
	st := s.stats
	return fmt.Sprintf("%s: %d deliveries of %d distinct messages (%d of %d acknowledged ones missing); QoS 1 duplicates %d; QoS 2 resends filtered %d; packet id reuses %d; received %d never-acknowledged and %d refused messages; %d unknown PUBREL; %d connections, %d stalls, %d times left",
		s.name, st.deliveries, st.firsts, lost, wantTotal, st.qos1Dups, st.qos2Filtered, st.pidReuse, unackedGot, refusedGot, st.pubrelUnknown, st.connects, st.stalls, st.leaves)
}

// lostRuns describes in which broker runs the lost messages had been
// acknowledged, such as "acknowledged in run 3: 442, run 4: 197". Every run
// but the last was killed during the workload; drained says whether the last
// one had the time to deliver everything.
func lostRuns(byRun map[uint16]int, runs int, drained bool) string {
	const maxRuns = 8
	keys := slices.Sorted(maps.Keys(byRun))
	var parts []string
	for _, r := range keys[:min(len(keys), maxRuns)] {
		parts = append(parts, fmt.Sprintf("run %d: %d", r, byRun[r]))
	}
	if len(keys) > maxRuns {
		parts = append(parts, fmt.Sprintf("and %d more runs", len(keys)-maxRuns))
	}
	note := "; every run but the last was killed"
	if _, ok := byRun[uint16(runs)]; ok {
		if drained {
			note = fmt.Sprintf("; run %d is the last one, never killed", runs)
		} else {
			note = fmt.Sprintf("; run %d is the last one, cut short", runs)
		}
	}
	return "acknowledged in " + strings.Join(parts, ", ") + note
}

// seqRanges formats ascending sequence numbers as ranges, such as
// "12-40, 57", showing at most a few ranges.
func seqRanges(seqs []int) string {
	const maxRanges = 8
	var parts []string
	ranges := 0
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if ranges < maxRanges {
			if i == j {
				parts = append(parts, fmt.Sprint(seqs[i]))
			} else {
				parts = append(parts, fmt.Sprintf("%d-%d", seqs[i], seqs[j]))
			}
		}
		ranges++
		i = j + 1
	}
	if ranges > maxRanges {
		parts = append(parts, fmt.Sprintf("and %d more ranges", ranges-maxRanges))
	}
	return strings.Join(parts, ", ")
}

// sum adds up the values of m.
func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
