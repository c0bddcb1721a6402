package main

import (
	"encoding/json"
	"fmt"
)

// product is one thing the shop sells. The catalogue is fixed in code: the
// example is about the sessions, not about stock keeping.
type product struct {
	ID, Name, Blurb string
	Cents           int
}

var catalogue = []product{
	{"tea", "Green tea", "Sencha from Shizuoka, 100 g of loose leaf.", 850},
	{"mug", "Stoneware mug", "Holds 350 ml; glazed by hand, so no two are alike.", 1400},
	{"notebook", "Dot-grid notebook", "A5, 120 pages of paper that takes fountain pens.", 1200},
	{"pencils", "Pencils, set of 6", "Cedar, HB to 4B, sharpened and ready.", 600},
}

func productByID(id string) (product, bool) {
	for _, p := range catalogue {
		if p.ID == id {
			return p, true
		}
	}
	return product{}, false
}

// maxQuantity caps one line of the cart, which keeps the session data
// small whatever a visitor sends.
const maxQuantity = 9

// cart maps product ids to quantities. It is kept as JSON under the
// session data key cartKey.
type cart map[string]int

// cartKey is the session data key of the cart.
const cartKey = "cart"

// decodeCart reads a cart as stored. Lines for products the catalogue no
// longer has, and quantities out of range, are dropped: the stored cart
// is the visitor's own input of earlier requests.
func decodeCart(raw []byte) cart {
	c := cart{}
	if len(raw) == 0 {
		return c
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return cart{}
	}
	for id, n := range c {
		if _, ok := productByID(id); !ok || n < 1 {
			delete(c, id)
		} else if n > maxQuantity {
			c[id] = maxQuantity
		}
	}
	return c
}

func (c cart) encode() []byte {
	b, _ := json.Marshal(c) // a map[string]int always encodes
	return b
}

// cartLine is one product of the cart as the page shows it.
type cartLine struct {
	product
	Quantity, Cents int
}

// cartView is the cart as the page shows it, in catalogue order.
type cartView struct {
	Lines        []cartLine
	Count, Cents int
}

func (c cart) view() cartView {
	var v cartView
	for _, p := range catalogue {
		if n := c[p.ID]; n > 0 {
			v.Lines = append(v.Lines, cartLine{product: p, Quantity: n, Cents: n * p.Cents})
			v.Count += n
			v.Cents += n * p.Cents
		}
	}
	return v
}

// money formats cents as euros: 2900 is "€29.00".
func money(cents int) string {
	return fmt.Sprintf("€%d.%02d", cents/100, cents%100)
}
