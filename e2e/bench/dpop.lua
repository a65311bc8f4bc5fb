-- wrk script for the DPoP rows (`-- PROOFS`): every request carries the next of the DPoP
-- proofs the benchmark signed just before the run (wrk cannot sign), each proof once; the
-- token is one -H header for the whole row. Thread t reads PROOFS-t, one proof a line,
-- written for it alone, so no two threads send the same proof. A thread that has sent all
-- of its proofs sends the rest without one, which the plugin refuses and wrk counts; done()
-- says how many there were.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local proofs, sent = {}, 0
unproved = 0 -- global: done() reads it from each thread

function init(args)
  for line in io.lines(args[1] .. "-" .. id) do
    proofs[#proofs + 1] = line
  end
end

function request()
  sent = sent + 1
  local proof = proofs[sent]
  if proof == nil then
    unproved = unproved + 1
  end
  wrk.headers["DPoP"] = proof
  return wrk.format()
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("unproved")
  end
  io.write(string.format("Requests sent without a DPoP proof: %d\n", total))
end
