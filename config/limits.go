package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits cap what a copy of an app may use, where the kernel's memory and
// pids controllers can be used: Memory is RAM and swap together, in bytes;
// PIDs the number of processes and threads. Zero is no limit.
type Limits struct {
	Memory Bytes `yaml:"memory"`
	PIDs   int   `yaml:"pids"`
}

// Set reports whether any limit is set.
func (l Limits) Set() bool { return l.Memory > 0 || l.PIDs > 0 }

// SetsLimits reports whether any resource or restore testing plan sets a
// limit.
func (c *Config) SetsLimits() bool {
	for _, r := range c.Resources {
		if r.Limits.Set() {
			return true
		}
	}
	for _, p := range c.RestoreTesting {
		if p.Limits != nil && p.Limits.Set() {
			return true
		}
	}
	return false
}

// Over returns l with each limit that o sets taken from o: a plan's limits
// over its resource's.
func (l Limits) Over(o *Limits) Limits {
	if o == nil {
		return l
	}
	if o.Memory > 0 {
		l.Memory = o.Memory
	}
	if o.PIDs > 0 {
		l.PIDs = o.PIDs
	}
	return l
}

// Bounds of limits: less memory than MinMemory is a slip (512B meant
// MiB), and no kernel has more pids than MaxPIDs (its largest pid_max).
const (
	MinMemory = 4 << 20
	MaxPIDs   = 4 << 20
)

func (l Limits) validate(add func(field, format string, args ...any), f string) {
	if l.Memory != 0 && l.Memory < MinMemory {
		add(f+".memory", "%d bytes is less than 4MiB, too little for any app: write it with its unit, such as 512MiB or 2GiB", l.Memory)
	}
	if l.PIDs < 0 || l.PIDs > MaxPIDs {
		add(f+".pids", "%d must be between 1 and %d processes (0 or none: no limit)", l.PIDs, MaxPIDs)
	}
}

// Bytes is a size written with its unit: 512MiB, 2GiB, 1.5GB.
type Bytes int64

// byteUnits are the units a size may be written in: powers of 1024 with
// an i, of 1000 without.
var byteUnits = map[string]float64{
	"B":   1,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
}

// ParseBytes reads a size such as 512MiB, 2 GiB or 1.5GB.
func ParseBytes(s string) (Bytes, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, fmt.Errorf("%q is not a size: write it with its unit, such as 512MiB or 2GiB", s)
	}
	unit, ok := byteUnits[strings.TrimSpace(t[i:])]
	n, err := strconv.ParseFloat(t[:i], 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("%q is not a size: write a number and one of the units B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB for powers of 1000), such as 512MiB", s)
	}
	v := n * unit
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large a size", s)
	}
	return Bytes(v), nil
}

func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParseBytes(s)
	if err != nil {
		return valueError(n, "%v", err)
	}
	*b = v
	return nil
}
