package redis

import (
	"testing"
	"time"
)

func TestEsc(t *testing.T) {
	for in, want := range map[string]string{
		"0123abcdef":  "0123abcdef",
		"user-ü":      "user-ü",
		"a{b}:c%d":    "a%7Bb%7D%3Ac%25d",
		"%7B":         "%257B", // never the same as "{"
		"":            "",
		"{}":          "%7B%7D",
		"x:y":         "x%3Ay",
		"plain.name_": "plain.name_",
	} {
		if got := esc(in); got != want {
			t.Errorf("esc(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMillisUp(t *testing.T) {
	base := time.UnixMilli(1_800_000_000_000)
	for _, c := range []struct {
		t    time.Time
		want int64
	}{
		{base, 1_800_000_000_000},
		{base.Add(time.Microsecond), 1_800_000_000_001},
		{base.Add(999 * time.Microsecond), 1_800_000_000_001},
		{base.Add(time.Millisecond), 1_800_000_000_001},
	} {
		if got := millisUp(c.t); got != c.want {
			t.Errorf("millisUp(%v) = %d, want %d", c.t, got, c.want)
		}
	}
}

func TestSplitMember(t *testing.T) {
	for in, ok := range map[string]bool{"u1:s1": true, "s1:s1": true, ":s1": false, "u1:": false, "u1": false, "": false} {
		if _, _, got := splitMember(in); got != ok {
			t.Errorf("splitMember(%q) ok = %v, want %v", in, got, ok)
		}
	}
}
