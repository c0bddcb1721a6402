package web

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/sessiond/sessiond"
)

// The shop is a demonstration of session data: the cart is the session's
// data key "cart", so an anonymous visitor has one, a sign-in keeps it
// (the anonymous session's data moves to the new session), and a sign-out
// ends it with the session.

// cartKey is the session data key of the cart.
const cartKey = "cart"

// maxQuantity caps one line of the cart.
const maxQuantity = 9

type product struct {
	ID, Name, Blurb string
	Cents           int
}

var products = []product{
	{"tea", "Green tea", "Sencha from Shizuoka, 100 g loose leaf.", 850},
	{"mug", "Stoneware mug", "Holds 350 ml; glazed by hand, so each one differs.", 1400},
	{"notebook", "Dot-grid notebook", "A5, 120 pages of 100 g paper that takes fountain pens.", 1200},
	{"pencils", "Pencils, set of 6", "Cedar, HB to 4B, sharpened and ready.", 600},
}

func productByID(id string) (product, bool) {
	for _, p := range products {
		if p.ID == id {
			return p, true
		}
	}
	return product{}, false
}

// cart maps product ids to quantities.
type cart map[string]int

type cartLine struct {
	product
	Quantity, Cents int
}

type shopData struct {
	Products []product
	Lines    []cartLine
	Count    int
	Total    int
}

func (p *Pages) loadCart(r *http.Request, v *visitor) (cart, error) {
	c := cart{}
	if v.session == nil {
		return c, nil
	}
	data, err := p.sessions.Data(r.Context(), v.session.ID)
	if errors.Is(err, sessiond.ErrNotFound) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if raw, ok := data[cartKey]; ok {
		_ = json.Unmarshal(raw, &c) // a cart some API client wrote differently: start afresh
	}
	for id, n := range c {
		if _, ok := productByID(id); !ok || n < 1 {
			delete(c, id)
		}
	}
	return c, nil
}

func (p *Pages) shopPage(w http.ResponseWriter, r *http.Request, v *visitor) {
	c, err := p.loadCart(r, v)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	d := shopData{Products: products}
	for _, pr := range products { // in catalogue order
		if n := c[pr.ID]; n > 0 {
			d.Lines = append(d.Lines, cartLine{product: pr, Quantity: n, Cents: n * pr.Cents})
			d.Count += n
			d.Total += n * pr.Cents
		}
	}
	pv := p.page(w, r, v, "Shop", "shop")
	pv.Data = d
	p.render(w, r, http.StatusOK, "shop", pv)
}

func (p *Pages) cartSubmit(w http.ResponseWriter, r *http.Request, v *visitor) {
	c, err := p.loadCart(r, v)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	id := r.PostFormValue("product")
	switch r.PostFormValue("action") {
	case "add":
		if _, ok := productByID(id); ok {
			c[id] = min(c[id]+1, maxQuantity)
		}
	case "remove":
		delete(c, id)
	case "empty":
		c = cart{}
	}
	if v.session == nil && len(c) == 0 {
		p.redirect(w, r, "/shop") // nothing to keep: no session needed
		return
	}
	b, _ := json.Marshal(c)
	if _, err := p.srv.PutData(w, r, v.session, cartKey, b); err != nil {
		p.fail(w, r, err)
		return
	}
	p.redirect(w, r, "/shop")
}
