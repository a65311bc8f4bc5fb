-- wrk script for the rows that need a new bearer token per request (`-- PREFIX`), so that
-- no cache and no shared in-flight introspection can answer for another request. Each
-- thread numbers its own tokens. With a pool (`-- PREFIX POOL`), the requests cycle through
-- POOL tokens instead, the same in every thread. Rows with one token pass it with -H and
-- need no script.
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local prefix, pool, n = "", 0, 0

function init(args)
  prefix = args[1]
  pool = tonumber(args[2] or "0")
end

function request()
  n = n + 1
  if pool > 0 then
    wrk.headers["Authorization"] = "Bearer " .. prefix .. "-" .. (n % pool)
  else
    wrk.headers["Authorization"] = "Bearer " .. prefix .. "-" .. id .. "-" .. n
  end
  return wrk.format()
end
