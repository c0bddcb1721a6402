package main

import "github.com/sessiond/sessiond/web"

// mountPages serves the browser pages (package web) on the public
// listener, unless --pages=false.
func (a *app) mountPages() error {
	if !a.cfg.Pages {
		return nil
	}
	p, err := web.New(a.server)
	if err != nil {
		return err
	}
	a.server.SetPages(p)
	return nil
}
