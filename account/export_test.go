package account

// SetHashHook sets the hasher's test hook: f(true) as each argon2
// computation starts, f(false) as it ends, inside the concurrency limit.
func SetHashHook(h *Hasher, f func(start bool)) { h.testHook = f }

// CommonPasswordCount is the size of the embedded list.
func CommonPasswordCount() int { return len(commonPasswords()) }

// Waiting is how many calls wait for a hash slot.
func Waiting(h *Hasher) int { return int(h.waiting.Load()) }
