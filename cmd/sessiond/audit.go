package main

import (
	"context"
	"sync"
	"time"

	"github.com/sessiond/sessiond/audit"
)

// auditRecorder records the events that happen below the server (account
// lockouts) into the backend's audit trail; with no trail it records
// nothing.
func (a *app) auditRecorder() *audit.Recorder {
	return &audit.Recorder{Store: a.backend.audit, Log: a.log}
}

// runAuditRetention deletes audit events older than --audit-retention,
// at start and then hourly (or every --sweep-interval when that is
// longer), until ctx ends. Retention 0 keeps events forever.
func (a *app) runAuditRetention(ctx context.Context, wg *sync.WaitGroup) {
	if a.backend.audit == nil || a.cfg.AuditRetention <= 0 {
		return
	}
	every := max(time.Hour, a.cfg.SweepInterval)
	wg.Go(func() {
		_ = audit.RunRetention(ctx, a.backend.audit, a.cfg.AuditRetention, every, nil, func(err error) {
			a.log.Error("deleting old audit events", "err", err)
		})
	})
}
