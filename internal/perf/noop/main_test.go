package main

import (
	"encoding/json"
	"testing"
)

func TestBodyHasTheSizeAndIsJSON(t *testing.T) {
	for _, n := range []int{16, 17, 600, 4096} {
		b := Body(n)
		if len(b) != n {
			t.Errorf("Body(%d) is %d bytes", n, len(b))
		}
		var v map[string]string
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("Body(%d) is not a JSON object: %v", n, err)
		}
	}
}
