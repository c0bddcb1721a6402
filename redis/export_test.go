package redis

// SetCacheHook makes s tell f of every read through the client-side cache,
// whether it was served from memory. Set it before s is used.
func SetCacheHook(s *Store, f func(hit bool)) { s.cacheHook = f }

// Mode is the rueidis client mode of s: "standalone" or "cluster".
func Mode(s *Store) string { return string(s.c.Mode()) }
