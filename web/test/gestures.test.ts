import { describe, expect, test } from "vitest";
import {
  CANCEL_DX,
  CLICK_MS,
  LOCK_DY,
  beginHold,
  classifyPosition,
  classifyRelease,
  moveHold,
  releaseHold,
  type Hold,
  type PointerSample,
} from "../src/recorder/gestures";

const at = (x: number, y: number, t = 0): PointerSample => ({ x, y, t });
const start = at(500, 400, 1000);

function moves(...samples: PointerSample[]): Hold {
  return samples.reduce(moveHold, beginHold(start));
}

describe("thresholds", () => {
  test("match UI.md", () => {
    expect(CANCEL_DX).toBe(100);
    expect(LOCK_DY).toBe(80);
    expect(CLICK_MS).toBe(300);
  });
});

describe("classifyPosition", () => {
  test("small moves mean nothing", () => {
    expect(classifyPosition(start, at(500, 400))).toBe("none");
    expect(classifyPosition(start, at(400, 400))).toBe("none"); // exactly 100 px is not more
    expect(classifyPosition(start, at(500, 320))).toBe("none"); // exactly 80 px is not more
    expect(classifyPosition(start, at(700, 400))).toBe("none"); // right does nothing
    expect(classifyPosition(start, at(500, 600))).toBe("none"); // down does nothing
  });

  test("left past 100 px cancels, up past 80 px locks", () => {
    expect(classifyPosition(start, at(399, 400))).toBe("cancel");
    expect(classifyPosition(start, at(500, 319))).toBe("lock");
    expect(classifyPosition(start, at(390, 380))).toBe("cancel");
    expect(classifyPosition(start, at(480, 300))).toBe("lock");
  });

  test("both past: the one further past its threshold wins, a tie locks", () => {
    expect(classifyPosition(start, at(300, 310))).toBe("cancel"); // 2.0 vs 1.125
    expect(classifyPosition(start, at(390, 200))).toBe("lock"); // 1.1 vs 2.5
    expect(classifyPosition(start, at(300, 240))).toBe("lock"); // 2.0 vs 2.0
  });
});

describe("moveHold", () => {
  test("starts undecided", () => {
    const hold = beginHold(start);
    expect(hold.outcome).toBe("none");
    expect(hold.last).toEqual(start);
  });

  test("slide left cancels", () => {
    expect(moves(at(450, 400, 1100), at(398, 402, 1200)).outcome).toBe("cancel");
  });

  test("slide up locks", () => {
    expect(moves(at(500, 350, 1100), at(505, 310, 1200)).outcome).toBe("lock");
  });

  test("the first threshold crossed wins, and the outcome sticks", () => {
    // Up first, then far left: still locked.
    expect(moves(at(500, 300), at(200, 300)).outcome).toBe("lock");
    // Left first, then far up: still cancelled.
    expect(moves(at(350, 400), at(350, 100)).outcome).toBe("cancel");
    // Sliding back does not undo it.
    expect(moves(at(350, 400), at(500, 400)).outcome).toBe("cancel");
  });

  test("one jump across both thresholds: whichever the straight path crossed first", () => {
    // From (−90, −10) to (−120, −100): x passes −100 a third of the way, y passes −80 at 7/9.
    expect(moves(at(410, 390), at(380, 300)).outcome).toBe("cancel");
    // From (−10, −70) to (−200, −90): y passes −80 at half way, x passes −100 at 90/190.
    expect(moves(at(490, 330), at(300, 310)).outcome).toBe("cancel");
    // From (−10, −75) to (−110, −100): y passes −80 at 1/5, x passes −100 at 9/10.
    expect(moves(at(490, 325), at(390, 300)).outcome).toBe("lock");
  });

  test("a decided hold is returned unchanged", () => {
    const locked = moves(at(500, 300));
    expect(moveHold(locked, at(0, 0))).toBe(locked);
  });

  test("does not change its input (pure)", () => {
    const hold = beginHold(start);
    const copy = structuredClone(hold);
    moveHold(hold, at(0, 0));
    expect(hold).toEqual(copy);
  });
});

describe("release", () => {
  test("under 300 ms is a click, from 300 ms a release", () => {
    expect(classifyRelease(start, start.t + 299)).toBe("click");
    expect(classifyRelease(start, start.t + 300)).toBe("release");
    expect(releaseHold(beginHold(start), start.t + 50)).toBe("click");
    expect(releaseHold(beginHold(start), start.t + 2000)).toBe("release");
  });

  test("a small wobble does not spoil a click or a release", () => {
    expect(releaseHold(moves(at(480, 390, 1100)), 1200)).toBe("click");
    expect(releaseHold(moves(at(480, 390, 1100)), 5000)).toBe("release");
  });

  test("after a cancel or lock the release means nothing", () => {
    expect(releaseHold(moves(at(300, 400)), 5000)).toBe("none");
    expect(releaseHold(moves(at(500, 200)), 1100)).toBe("none");
  });
});
