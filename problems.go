package vigil

// Problem is something a start-up check found in the configuration or in
// what it names (a vault, a program, a resource's data): what is wrong,
// with what, and what to do about it.
type Problem struct {
	// Hard problems stop vigil from starting: they would fail every
	// backup or restore test that meets them. The others are warnings:
	// true now (a folder not mounted yet, a database down), perhaps not
	// by the time a backup runs.
	Hard bool `json:"hard"`
	// Subject is what the problem is about: `vault "lab-vault"`,
	// `resource "docs"`, or the config file.
	Subject string `json:"subject"`
	// Message says what is wrong and what to do.
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Subject == "" {
		return p.Message
	}
	return p.Subject + ": " + p.Message
}

// HardProblems returns the hard problems among ps.
func HardProblems(ps []Problem) []Problem {
	var out []Problem
	for _, p := range ps {
		if p.Hard {
			out = append(out, p)
		}
	}
	return out
}
