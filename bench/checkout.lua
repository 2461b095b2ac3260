-- wrk: order creation (as the shop's backend) then checkout (as the buyer), each with a unique
-- Idempotency-Key (unique across runs: BENCH_RUN). A thread's connections interleave, so a created order's id waits in a queue
-- for the next request of the thread. Counts completed checkouts per thread for done().
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  run = os.getenv("BENCH_RUN") or tostring(os.time())
  service = os.getenv("SERVICE_TOKEN")
  user = os.getenv("USER_TOKEN")
  queue = {}
  n = 0
  checkouts = 0
  failures = 0
  last_failure = ""
  order_body = '{"user_id":"bench_user","currency":"usd","items":[' ..
    '{"sku":"tee","name":"T-shirt","quantity":2,"unit_price":1999},' ..
    '{"sku":"mug","name":"Mug","quantity":1,"unit_price":850}]}'
  checkout_body = '{"success_url":"https://shop.example/ok","cancel_url":"https://shop.example/no"}'
end

function request()
  n = n + 1
  local key = string.format("bench-%s-%d-%d", run, tid, n)
  local order = table.remove(queue)
  if order then
    return wrk.format("POST", "/api/v1/orders/" .. order .. "/checkout", {
      ["Authorization"] = "Bearer " .. user,
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = key,
    }, checkout_body)
  end
  return wrk.format("POST", "/api/v1/orders", {
    ["Authorization"] = "Bearer " .. service,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = key,
  }, order_body)
end

function response(status, headers, body)
  if status ~= 201 then
    failures = failures + 1
    last_failure = status .. " " .. string.sub(body, 1, 300)
    return
  end
  local order = string.match(body, '^{"id":"(ord_[0-9a-f]+)"')
  if order then
    table.insert(queue, order)
  else
    checkouts = checkouts + 1
  end
end

function done(summary, latency, requests)
  local total, failed = 0, 0
  for _, t in ipairs(threads) do
    total = total + t:get("checkouts")
    failed = failed + t:get("failures")
    if t:get("last_failure") ~= "" then
      io.write("a failure: " .. t:get("last_failure") .. "\n")
    end
  end
  io.write(string.format("checkouts %d failures %d seconds %.3f\n",
    total, failed, summary.duration / 1e6))
end
