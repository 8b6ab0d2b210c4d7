package backfill

const rssChildEnv = "BACKFILL_RSS_CHILD"

func rssChild() int { return 0 }
