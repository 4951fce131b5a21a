/* qfs-parser's tag answers: one ECR DescribeImages serves every deploy that happened before it.
 *
 * A tag is resolved to learn what a deploy ran. Any answer ECR gave after the deploy is as good as
 * a fresh one, so a deploy takes the answer of a lookup that started after it (parser.h,
 * parser_answer_not_before), done or still in flight. When the lookup in flight started too early,
 * the deploy waits for it to end and looks again, so one lookup per image is in flight at a time.
 * A burst of deploys of one image costs one ECR call per lookup's duration, and a tag moved after a
 * lookup is never answered with the old digest for a deploy made after the move. */
#include <stdlib.h>
#include <string.h>

#include "parser.h"
#include "qfs/util.h"

#define BUCKETS 1024

struct parser_digest_flight {
    struct parser_digest_flight *hnext;      /* bucket chain, while mapped */
    struct parser_digest_flight *prev, *next; /* age order, oldest first, while mapped */
    char *key;
    int64_t started_ms;
    bool mapped, done;
    bool orphan; /* the memo is gone: those queued behind it cannot look again */
    char *digest, *unresolved; /* the kept answer, once done */
    struct parser_digest_waiter *waiters, *waiters_tail;
    struct parser_digest_waiter *turns, *turns_tail; /* queued behind it */
};

struct parser_digests {
    struct parser_digest_flight *buckets[BUCKETS];
    struct parser_digest_flight *oldest, *newest;
    size_t count, max_entries;
    int64_t max_age_ms;
    struct parser_digest_stats stats;
};

struct parser_digests *parser_digests_new(size_t max_entries, int64_t max_age_ms)
{
    struct parser_digests *m = qfs_xcalloc(1, sizeof(*m));
    m->max_entries = max_entries ? max_entries : 1;
    m->max_age_ms = max_age_ms;
    return m;
}

static void flight_free(struct parser_digest_flight *f)
{
    free(f->key);
    free(f->digest);
    free(f->unresolved);
    free(f);
}

static size_t bucket_of(const char *key)
{
    return (size_t)(qfs_hash_str(key) % BUCKETS);
}

/* Takes f out of the index; an unmapped flight in flight is freed when it ends. */
static void unmap(struct parser_digests *m, struct parser_digest_flight *f)
{
    struct parser_digest_flight **pp = &m->buckets[bucket_of(f->key)];
    while (*pp != f) pp = &(*pp)->hnext;
    *pp = f->hnext;
    if (f->prev) f->prev->next = f->next;
    else m->oldest = f->next;
    if (f->next) f->next->prev = f->prev;
    else m->newest = f->prev;
    f->mapped = false;
    f->hnext = f->prev = f->next = NULL;
    m->count--;
    if (f->done) flight_free(f);
}

void parser_digests_free(struct parser_digests *m)
{
    if (!m) return;
    while (m->oldest) {
        struct parser_digest_flight *f = m->oldest;
        /* A flight still in flight belongs to its lookup, which ends it later. */
        f->orphan = !f->done;
        unmap(m, f);
    }
    free(m);
}

static struct parser_digest_flight *find(struct parser_digests *m, const char *key)
{
    for (struct parser_digest_flight *f = m->buckets[bucket_of(key)]; f; f = f->hnext)
        if (strcmp(f->key, key) == 0) return f;
    return NULL;
}

static void append(struct parser_digest_waiter **head, struct parser_digest_waiter **tail,
                   struct parser_digest_waiter *w)
{
    w->next = NULL;
    if (*tail) (*tail)->next = w;
    else *head = w;
    *tail = w;
}

static void add_waiter(struct parser_digest_flight *f, struct parser_digest_waiter *w)
{
    append(&f->waiters, &f->waiters_tail, w);
}

bool parser_digests_wait_turn(struct parser_digests *m, const char *key, struct parser_digest_waiter *w)
{
    struct parser_digest_flight *f = find(m, key);
    if (!f || f->done) return false;
    append(&f->turns, &f->turns_tail, w);
    m->stats.queued++;
    return true;
}

bool parser_digests_join(struct parser_digests *m, const char *key, int64_t not_before_ms, int64_t now_ms,
                         struct parser_digest_waiter *w)
{
    struct parser_digest_flight *f = find(m, key);
    if (f && f->done && now_ms - f->started_ms > m->max_age_ms) {
        unmap(m, f);
        f = NULL;
    }
    if (!f || f->started_ms < not_before_ms) return false;
    m->stats.reused++;
    if (!f->done) {
        add_waiter(f, w);
        return true;
    }
    /* Copies: the answer may lead to a lookup of the same key, which drops this flight. */
    char *digest = f->digest ? qfs_xstrdup(f->digest) : NULL;
    char *unresolved = f->unresolved ? qfs_xstrdup(f->unresolved) : NULL;
    struct parser_digest_outcome o = {.digest = digest, .unresolved = unresolved, .reusable = true};
    w->answered(w, &o);
    free(digest);
    free(unresolved);
    return true;
}

struct parser_digest_flight *parser_digests_begin(struct parser_digests *m, const char *key, int64_t now_ms,
                                                  struct parser_digest_waiter *w)
{
    struct parser_digest_flight *old = find(m, key);
    if (old) unmap(m, old);
    /* Make room: answers past their age, then the oldest, go first. */
    while (m->oldest && (m->count >= m->max_entries || now_ms - m->oldest->started_ms > m->max_age_ms))
        unmap(m, m->oldest);
    struct parser_digest_flight *f = qfs_xcalloc(1, sizeof(*f));
    f->key = qfs_xstrdup(key);
    f->started_ms = now_ms;
    f->mapped = true;
    size_t b = bucket_of(key);
    f->hnext = m->buckets[b];
    m->buckets[b] = f;
    f->prev = m->newest;
    if (m->newest) m->newest->next = f;
    else m->oldest = f;
    m->newest = f;
    m->count++;
    m->stats.lookups++;
    add_waiter(f, w);
    return f;
}

void parser_digests_end(struct parser_digests *m, struct parser_digest_flight *f,
                        const struct parser_digest_outcome *o)
{
    struct parser_digest_waiter *w = f->waiters, *t = f->turns;
    f->waiters = f->waiters_tail = f->turns = f->turns_tail = NULL;
    bool orphan = f->orphan;
    /* Settle the flight before answering: an answer may start other lookups. */
    bool keep = f->mapped && o->reusable;
    if (keep) {
        f->done = true;
        f->digest = o->digest ? qfs_xstrdup(o->digest) : NULL;
        f->unresolved = o->unresolved ? qfs_xstrdup(o->unresolved) : NULL;
    } else if (f->mapped) {
        unmap(m, f);
    }
    /* A kept flight may be dropped by what an answer starts: from here on only o is used. */
    if (!keep) flight_free(f);
    while (w) {
        struct parser_digest_waiter *next = w->next;
        w->answered(w, o);
        w = next;
    }
    /* Those queued behind it: an answer began too early for them, so they look again (the first
     * begins a lookup, the rest join it); a failure they share. */
    bool answer = o->reusable && (o->digest || o->unresolved);
    const struct parser_digest_outcome stopping = {
        .retry = QFS_UNAVAILABLE, .what = "DescribeImages", .detail = "the parser is stopping",
        .give_up = "the parser stopped before the tag was resolved"};
    while (t) {
        struct parser_digest_waiter *next = t->next;
        if (orphan) t->answered(t, &stopping);
        else if (answer) t->turn(t);
        else t->answered(t, o);
        t = next;
    }
}

void parser_digests_stats(const struct parser_digests *m, struct parser_digest_stats *out)
{
    *out = m->stats;
    out->entries = m->count;
}
