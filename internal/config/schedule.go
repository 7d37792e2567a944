package config

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/field"
)

// Schedule limits.
const (
	// MinScheduleInterval is the shortest time between two scheduled runs:
	// cron counts whole seconds, and "@every 1ns" would silently run every
	// second. Labs and tests run every few seconds against local
	// registries, so the floor is not higher.
	MinScheduleInterval = time.Second
	// MaxJitter bounds the random delay of a scheduled run.
	MaxJitter = 24 * time.Hour
)

// validateSchedule checks schedule and jitter together: a jitter longer
// than the time between runs would push each run past the next.
func (c *Config) validateSchedule(p *field.List) {
	spec := c.ScheduleSpec()
	var every time.Duration // 0: not known
	if s, err := parseSchedule(spec); err != nil {
		p.Add("schedule", "invalid cron spec %q: %v", c.Schedule, err)
	} else if d, ok := everyDuration(spec); ok && (d < MinScheduleInterval || d%time.Second != 0) {
		if d < MinScheduleInterval {
			p.Add("schedule", "%q runs more often than once every %s", c.Schedule, fmtDuration(MinScheduleInterval))
		} else {
			p.Add("schedule", "%q is not a whole number of seconds (cron would run it every %s)", c.Schedule, fmtDuration(d.Truncate(time.Second)))
		}
	} else {
		every = interval(s)
	}
	switch {
	case c.Jitter < 0:
		p.Add("jitter", "must not be negative")
	case c.Jitter > MaxJitter:
		p.Add("jitter", "%s is longer than a day (at most %s)", fmtDuration(c.Jitter), fmtDuration(MaxJitter))
	case every > 0 && c.Jitter > every:
		p.Add("jitter", "%s is longer than the %s between two runs of schedule %q: runs would be pushed past the next one",
			fmtDuration(c.Jitter), fmtDuration(every), spec)
	}
}

// parseSchedule parses a schedule with CronParser, without its panics: it
// indexes past the end of "TZ=Zone" with nothing after the zone.
func parseSchedule(spec string) (s cron.Schedule, err error) {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		if _, rest, ok := strings.Cut(spec, " "); !ok || strings.TrimSpace(rest) == "" {
			return nil, fmt.Errorf("nothing after the time zone")
		}
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("cannot be parsed (%v)", r)
		}
	}()
	return CronParser().Parse(spec)
}

// everyDuration returns the duration of an "@every D" schedule as written
// (the parsed schedule has it rounded to whole seconds).
func everyDuration(spec string) (time.Duration, bool) {
	f := strings.Fields(spec)
	i := slices.Index(f, "@every")
	if i < 0 || i+1 >= len(f) {
		return 0, false
	}
	d, err := time.ParseDuration(f[i+1])
	return d, err == nil
}

// interval returns the shortest time between two activations of a parsed
// schedule (0 if not known). For a cron spec it is found from the times of
// day it fires at, the gap over midnight included, so it is at most a day.
func interval(s cron.Schedule) time.Duration {
	switch s := s.(type) {
	case cron.ConstantDelaySchedule:
		return s.Delay
	case *cron.SpecSchedule:
		const star = 1 << 63 // cron's marker for a field written as "*"
		var times []int      // seconds since midnight
		for h := range setBits(s.Hour &^ star) {
			for m := range setBits(s.Minute &^ star) {
				for sec := range setBits(s.Second &^ star) {
					times = append(times, h*3600+m*60+sec)
				}
			}
		}
		if len(times) == 0 {
			return 0
		}
		slices.Sort(times)
		gap := times[0] + 86400 - times[len(times)-1]
		for i := 1; i < len(times); i++ {
			gap = min(gap, times[i]-times[i-1])
		}
		return time.Duration(gap) * time.Second
	}
	return 0
}

// setBits yields the positions of the bits set in b.
func setBits(b uint64) func(func(int) bool) {
	return func(yield func(int) bool) {
		for b != 0 {
			i := bits.TrailingZeros64(b)
			if !yield(i) {
				return
			}
			b &^= 1 << i
		}
	}
}

// fmtDuration writes a duration as an operator would: 24h, 1h30m, 90s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// builtinNames lists the built-in targets, for messages.
func builtinNames() string {
	var n []string
	for _, t := range asn.Builtin() {
		n = append(n, t.Name)
	}
	return strings.Join(n, ", ")
}
