package fieldbussim

import (
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

func TestVirtualClockOrderAndStop(t *testing.T) {
	c := NewVirtualClock(epoch)
	var got []string
	at := func(name string) func() {
		return func() { got = append(got, name+"@"+c.Now().Sub(epoch).String()) }
	}
	c.AfterFunc(30*time.Millisecond, at("c"))
	c.AfterFunc(10*time.Millisecond, at("a"))
	c.AfterFunc(10*time.Millisecond, at("a2")) // tie: scheduling order
	stopped := c.AfterFunc(20*time.Millisecond, at("never"))
	c.AfterFunc(20*time.Millisecond, func() {
		got = append(got, "b@"+c.Now().Sub(epoch).String())
		c.AfterFunc(5*time.Millisecond, at("chained")) // falls due inside this Advance
	})
	c.AfterFunc(-time.Second, at("past")) // never synchronous, fires first
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop: want true once, then false")
	}
	if len(got) != 0 {
		t.Fatal("AfterFunc ran synchronously")
	}
	c.Advance(40 * time.Millisecond)
	want := []string{"past@0s", "a@10ms", "a2@10ms", "b@20ms", "chained@25ms", "c@30ms"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fired %v, want %v", got, want)
	}
	if c.Now().Sub(epoch) != 40*time.Millisecond || c.Pending() != 0 {
		t.Errorf("now %v pending %d", c.Now().Sub(epoch), c.Pending())
	}
}

func TestSchedulerCancelAndClose(t *testing.T) {
	for _, name := range []string{"virtual", "real"} {
		t.Run(name, func(t *testing.T) {
			var clk Clock = RealClock{}
			vc := NewVirtualClock(epoch)
			if name == "virtual" {
				clk = vc
			}
			s := newScheduler(clk)
			var ran atomic.Int32
			cancel := s.after(time.Hour, func() { ran.Add(1) })
			cancel()
			cancel() // twice is harmless
			done := make(chan struct{})
			s.after(time.Millisecond, func() { ran.Add(10); close(done) })
			s.after(time.Hour, func() { ran.Add(100) }) // cancelled by close
			if name == "virtual" {
				vc.Advance(2 * time.Millisecond)
			}
			<-done
			s.close()
			s.close()
			if r := ran.Load(); r != 10 {
				t.Errorf("ran %d, want 10 (one callback)", r)
			}
			if c := s.after(0, func() { ran.Add(1000) }); c == nil {
				t.Error("after on a closed scheduler returned nil")
			}
			if name == "virtual" {
				vc.Advance(time.Hour)
			}
			if r := ran.Load(); r != 10 {
				t.Errorf("callback ran after close: %d", r)
			}
		})
	}
}
