package sessiond

// MaxKeyLen is the longest session data key.
const MaxKeyLen = 128

// ValidKey reports whether key matches [A-Za-z0-9._-]{1,128}, the pattern
// of session data keys.
func ValidKey(key string) bool {
	if len(key) == 0 || len(key) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// DataSize is the size a store counts against Policy.MaxDataBytes: the sum
// of len(key)+len(value) over all keys.
func DataSize(data map[string][]byte) int {
	n := 0
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}
