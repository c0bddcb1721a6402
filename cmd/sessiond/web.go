package main

import "github.com/sessiond/sessiond/web"

// mountPages serves the browser pages (package web) on the public
// listener, unless --pages=false.
func (a *app) mountPages() error {
	if !a.cfg.Pages {
		return nil
	}
	proxies, _ := a.cfg.proxies()
	p, err := web.New(web.Config{Cookie: a.cfg.cookie(), TrustedProxies: proxies}, web.Deps{
		Flows: a.flows, Sessions: a.sessions, Accounts: a.accounts, Audit: a.backend.audit, Logger: a.log})
	if err != nil {
		return err
	}
	a.server.SetPages(p)
	return nil
}
