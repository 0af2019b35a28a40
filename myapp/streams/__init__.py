"""Alert streams (Kafka: GCN, Hopskotch, a broker's own topics), declared as code and run by
the cron container's program like its jobs:

  declaration  streams.toml and settings.ALERT_STREAMS read and checked: each stream's class,
               options and handlers, one line naming what is wrong
  kafka        our Kafka stream class (plain, SASL): options to a consumer's settings
  consume      a stream's process (`streams listen NAME`): read, hand to the handlers,
               commit after storing; other AlertStream classes' own listen()
  store        one batch of messages in one transaction: handlers, dead letters, offsets
  message      a message as handlers see it, rebuilt from a dead letter for a retry
  handlers     handlers we ship: save_alert (a StreamAlert row), heartbeat
  state        what the Jobs page, /metrics, the checks and notifications read of the streams

The supervisor of the processes is a part of the cron program (myapp/sidecar/streams.py).
"""
