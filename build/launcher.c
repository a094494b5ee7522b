/*
 * dakera launcher: the front of the one-file `dakera` executable.
 *
 * The file is this launcher, then a payload (the PyInstaller one-folder build, each file
 * xz-compressed), then a 128-byte trailer. A PyInstaller one-file binary unpacks itself
 * into a fresh temp dir on every start (over a second for this app); the launcher unpacks
 * once into a cache dir keyed by the build id and later starts only exec() the unpacked
 * program, so the process that runs is the server itself (same pid, same signals).
 *
 * Cache dir, first usable of:
 *   1. $DAKERA_CACHE_DIR
 *   2. $XDG_CACHE_HOME/dakera, else $HOME/.cache/dakera
 *   3. ${TMPDIR:-/tmp}/dakera-<uid> (made 0700 by us; refused if owned by someone else)
 *   4. none writable (or all noexec): unpack into a fresh temp dir, run the server as a
 *      child, forward signals, delete the dir when it exits (PyInstaller's own behaviour).
 * Concurrent first starts are safe: each unpacks into its own temp dir and renames it into
 * place; the loser of the rename deletes its copy and runs the winner's.
 * The server gets DAKERA_EXECUTABLE=<this file> (`dakera service install` copies that file).
 *
 * Payload format (little-endian), written by build/pack.py:
 *   entry:   u8 type (1 dir, 2 file, 3 symlink), u8 method (0 stored, 1 xz), u16 path_len,
 *            u32 mode, u64 raw_size, u64 data_size, u64 reserved; path; data
 *   trailer: "DAKERA-SFX-1" padded to 16 bytes, u64 payload_offset, u64 payload_size,
 *            u64 entry_count, build id (64 bytes, NUL-padded), 24 bytes zero
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <lzma.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

#define MAGIC "DAKERA-SFX-1"
#define TRAILER_SIZE 128
#define HEADER_SIZE 32
#define MARKER ".dakera-complete"
#define PROGRAM "dakera"
#define MAX_THREADS 4
#define STALE_TMP_SECS 3600

enum { T_DIR = 1, T_FILE = 2, T_LINK = 3 };
enum { M_STORED = 0, M_XZ = 1 };

struct entry {
    uint8_t type, method;
    uint32_t mode;
    uint64_t raw_size, data_size;
    char *path;
    const unsigned char *data;
};

struct payload {
    const unsigned char *map;
    size_t map_size;
    uint64_t count;
    char build_id[65];
    struct entry *entries;
};

static void warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("dakera: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static uint64_t rd(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int self_path(char *buf, size_t n, const char *argv0) {
#if defined(__linux__)
    ssize_t len = readlink("/proc/self/exe", buf, n - 1);
    if (len > 0) {
        buf[len] = '\0';
        return 0;
    }
#elif defined(__APPLE__)
    char tmp[PATH_MAX];
    uint32_t size = sizeof tmp;
    if (_NSGetExecutablePath(tmp, &size) == 0 && realpath(tmp, buf)) return 0;
#endif
    (void)n;
    if (argv0 && strchr(argv0, '/') && realpath(argv0, buf)) return 0;
    return -1;
}

/* Path inside the payload: relative, no "..", no empty components. */
static int safe_relpath(const char *p) {
    if (!*p || *p == '/') return 0;
    const char *s = p;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0 || (len == 2 && s[0] == '.' && s[1] == '.') || (len == 1 && s[0] == '.'))
            return 0;
        if (!e) break;
        s = e + 1;
    }
    return 1;
}

static int load_payload(const char *self, struct payload *pl) {
    int fd = open(self, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size < TRAILER_SIZE) {
        close(fd);
        errno = ENOEXEC;
        return -1;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return -1;
    const unsigned char *m = map, *t = m + st.st_size - TRAILER_SIZE;
    pl->map = m;
    pl->map_size = (size_t)st.st_size;
    if (memcmp(t, MAGIC, sizeof MAGIC - 1) != 0) goto bad;
    uint64_t off = rd(t + 16, 8), size = rd(t + 24, 8);
    pl->count = rd(t + 32, 8);
    if (off > (uint64_t)st.st_size - TRAILER_SIZE || size > (uint64_t)st.st_size - TRAILER_SIZE - off)
        goto bad;
    memcpy(pl->build_id, t + 40, 64);
    pl->build_id[64] = '\0';
    if (!pl->build_id[0]) goto bad;
    for (const char *c = pl->build_id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '-' || *c == '_'))
            goto bad;
    if (pl->count == 0 || pl->count > size / HEADER_SIZE) goto bad;
    pl->entries = calloc(pl->count, sizeof *pl->entries);
    if (!pl->entries) return -1;
    const unsigned char *p = m + off, *end = m + off + size;
    for (uint64_t i = 0; i < pl->count; i++) {
        struct entry *e = &pl->entries[i];
        if ((size_t)(end - p) < HEADER_SIZE) goto bad;
        e->type = p[0];
        e->method = p[1];
        uint64_t plen = rd(p + 2, 2);
        e->mode = (uint32_t)rd(p + 4, 4);
        e->raw_size = rd(p + 8, 8);
        e->data_size = rd(p + 16, 8);
        p += HEADER_SIZE;
        if ((uint64_t)(end - p) < plen || (uint64_t)(end - p) - plen < e->data_size) goto bad;
        e->path = strndup((const char *)p, plen);
        if (!e->path || strlen(e->path) != plen || !safe_relpath(e->path)) goto bad;
        p += plen;
        e->data = p;
        p += e->data_size;
        if (e->type < T_DIR || e->type > T_LINK || e->method > M_XZ) goto bad;
        if (e->method == M_STORED && e->data_size != e->raw_size) goto bad;
    }
    return 0;
bad:
    errno = ENOEXEC;
    return -1;
}

static int mkdir_p(const char *path, mode_t mode) {
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST) return -1;
    struct stat st;
    if (stat(buf, &st) < 0) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

static void rm_rf(const char *path) { nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT); }

static int write_all(int fd, const unsigned char *buf, size_t n) {
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static int extract_file(const char *root, const struct entry *e, unsigned char *buf, size_t bufsize) {
    char full[PATH_MAX];
    if (snprintf(full, sizeof full, "%s/%s", root, e->path) >= (int)sizeof full) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (e->type == T_LINK) {
        char *target = strndup((const char *)e->data, e->data_size);
        if (!target) return -1;
        int rc = (*target == '/') ? (errno = EINVAL, -1) : symlink(target, full);
        free(target);
        return rc;
    }
    int fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    int rc = 0;
    if (e->method == M_STORED) {
        rc = write_all(fd, e->data, e->raw_size);
    } else {
        lzma_stream s = LZMA_STREAM_INIT;
        if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK) {
            close(fd);
            errno = ENOMEM;
            return -1;
        }
        s.next_in = e->data;
        s.avail_in = e->data_size;
        uint64_t total = 0;
        for (;;) {
            s.next_out = buf;
            s.avail_out = bufsize;
            lzma_ret r = lzma_code(&s, LZMA_FINISH);
            size_t got = bufsize - s.avail_out;
            total += got;
            if (got && write_all(fd, buf, got) < 0) {
                rc = -1;
                break;
            }
            if (r == LZMA_STREAM_END) break;
            if (r != LZMA_OK) {
                errno = EBADMSG;
                rc = -1;
                break;
            }
        }
        lzma_end(&s);
        if (rc == 0 && total != e->raw_size) {
            errno = EBADMSG;
            rc = -1;
        }
    }
    if (rc == 0 && fchmod(fd, (mode_t)(e->mode & 0755)) < 0) rc = -1;
#ifndef __linux__
    if (rc == 0 && fsync(fd) < 0) rc = -1; /* Linux: one syncfs() at the end instead */
#endif
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

struct job {
    const struct payload *pl;
    const char *root;
    uint64_t next;
    int err;
    pthread_mutex_t lock;
};

static void *worker(void *arg) {
    struct job *j = arg;
    size_t bufsize = 1 << 20;
    unsigned char *buf = malloc(bufsize);
    for (;;) {
        pthread_mutex_lock(&j->lock);
        uint64_t i = j->next++;
        int stop = j->err != 0;
        pthread_mutex_unlock(&j->lock);
        if (stop || i >= j->pl->count) break;
        const struct entry *e = &j->pl->entries[i];
        if (e->type == T_DIR) continue;
        if (!buf || extract_file(j->root, e, buf, bufsize) < 0) {
            int err = buf ? errno : ENOMEM;
            pthread_mutex_lock(&j->lock);
            if (!j->err) j->err = err;
            pthread_mutex_unlock(&j->lock);
            break;
        }
    }
    free(buf);
    return NULL;
}

/* Unpack every entry under root (an empty dir we own), then write the marker. */
static int extract_all(const struct payload *pl, const char *root) {
    char full[PATH_MAX];
    for (uint64_t i = 0; i < pl->count; i++) {
        const struct entry *e = &pl->entries[i];
        if (e->type != T_DIR) continue;
        if (snprintf(full, sizeof full, "%s/%s", root, e->path) >= (int)sizeof full) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (mkdir_p(full, 0755) < 0) return -1;
    }
    struct job j = {.pl = pl, .root = root, .next = 0, .err = 0};
    pthread_mutex_init(&j.lock, NULL);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (int)cpus;
    pthread_t threads[MAX_THREADS];
    int started = 0;
    for (int t = 0; t < n; t++)
        if (pthread_create(&threads[t], NULL, worker, &j) == 0) started++;
    if (started == 0) worker(&j);
    for (int t = 0; t < started; t++) pthread_join(threads[t], NULL);
    pthread_mutex_destroy(&j.lock);
    if (j.err) {
        errno = j.err;
        return -1;
    }
    if (snprintf(full, sizeof full, "%s/%s", root, MARKER) >= (int)sizeof full) return -1;
    int fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    int rc = write_all(fd, (const unsigned char *)pl->build_id, strlen(pl->build_id));
#ifdef __linux__
    if (rc == 0) rc = syncfs(fd); /* the files must be on disk before the rename publishes them */
#else
    if (rc == 0) rc = fsync(fd);
#endif
    close(fd);
#ifdef __linux__
    /* Now clean, the freshly written pages can leave the page cache: left there whole, every
       library the server maps would count in full in its RSS (the kernel maps cached pages
       around each fault), as if it had read all of them. */
    for (uint64_t i = 0; rc == 0 && i < pl->count; i++) {
        const struct entry *e = &pl->entries[i];
        if (e->type != T_FILE ||
            snprintf(full, sizeof full, "%s/%s", root, e->path) >= (int)sizeof full)
            continue;
        int f = open(full, O_RDONLY | O_CLOEXEC);
        if (f >= 0) {
            posix_fadvise(f, 0, 0, POSIX_FADV_DONTNEED);
            close(f);
        }
    }
#endif
    return rc;
}

static int has_marker(const char *dir) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, MARKER) >= (int)sizeof path) return 0;
    return access(path, F_OK) == 0;
}

static int tmp_name(char *out, size_t n, const char *root, const char *what) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int len = snprintf(out, n, "%s/.tmp-%s-%ld-%lx", root, what, (long)getpid(),
                       (unsigned long)(ts.tv_nsec ^ ((unsigned long)ts.tv_sec << 20)));
    if (len < 0 || (size_t)len >= n) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Temp dirs left by a killed first start: remove those older than an hour. */
static void remove_stale_tmp(const char *root) {
    DIR *d = opendir(root);
    if (!d) return;
    struct dirent *de;
    time_t now = time(NULL);
    char path[PATH_MAX];
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, ".tmp-", 5) != 0) continue;
        if (snprintf(path, sizeof path, "%s/%s", root, de->d_name) >= (int)sizeof path) continue;
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && now - st.st_mtime > STALE_TMP_SECS)
            rm_rf(path);
    }
    closedir(d);
}

/* Make root/<build id> a complete unpacked copy; out gets its path. */
static int prepare(const struct payload *pl, const char *root, char *out, size_t n) {
    if (snprintf(out, n, "%s/%s", root, pl->build_id) >= (int)n) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (has_marker(out)) return 0;
    if (mkdir_p(root, 0700) < 0) return -1;
    char tmp[PATH_MAX];
    struct stat st;
    if (lstat(out, &st) == 0) { /* there but without its marker: not ours to trust */
        if (tmp_name(tmp, sizeof tmp, root, "broken") == 0 && rename(out, tmp) == 0) rm_rf(tmp);
    }
    remove_stale_tmp(root);
    if (tmp_name(tmp, sizeof tmp, root, pl->build_id) < 0 || mkdir(tmp, 0700) < 0) return -1;
    if (extract_all(pl, tmp) < 0 || chmod(tmp, 0755) < 0) {
        int saved = errno;
        rm_rf(tmp);
        errno = saved;
        return -1;
    }
    if (rename(tmp, out) == 0) return 0;
    int saved = errno;
    rm_rf(tmp); /* a concurrent first start won the race: use its copy */
    if (has_marker(out)) return 0;
    errno = saved;
    return -1;
}

static void run(const char *dir, const char *self, char **argv) {
    char exe[PATH_MAX];
    if (snprintf(exe, sizeof exe, "%s/%s", dir, PROGRAM) >= (int)sizeof exe) {
        errno = ENAMETOOLONG;
        return;
    }
    setenv("DAKERA_EXECUTABLE", self, 1);
    argv[0] = exe;
    execv(exe, argv);
}

/* Fallback 3: a private dir under $TMPDIR that must belong to us and nobody else. */
static int private_tmp_root(char *out, size_t n) {
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || tmpdir[0] != '/') tmpdir = "/tmp";
    if (snprintf(out, n, "%s/dakera-%ld", tmpdir, (long)geteuid()) >= (int)n) return -1;
    if (mkdir(out, 0700) < 0 && errno != EEXIST) return -1;
    struct stat st;
    if (lstat(out, &st) < 0) return -1;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

static volatile pid_t child_pid;

static void forward(int sig) {
    if (child_pid > 0) kill(child_pid, sig);
}

/* Fallback 4: unpack to a throwaway dir, run as a child, clean up afterwards. */
static int run_once(const struct payload *pl, const char *self, char **argv) {
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || tmpdir[0] != '/') tmpdir = "/tmp";
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/dakera-XXXXXX", tmpdir) >= (int)sizeof dir || !mkdtemp(dir)) {
        warn("cannot create a temp dir in %s: %s", tmpdir, strerror(errno));
        return 127;
    }
    if (extract_all(pl, dir) < 0) {
        warn("cannot unpack into %s: %s", dir, strerror(errno));
        rm_rf(dir);
        return 127;
    }
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    struct sigaction sa = {0};
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) sigaction(sigs[i], &sa, NULL);
    pid_t pid = fork();
    if (pid == 0) {
        for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) signal(sigs[i], SIG_DFL);
        run(dir, self, argv);
        warn("cannot run %s/%s: %s", dir, PROGRAM, strerror(errno));
        _exit(127);
    }
    if (pid < 0) {
        warn("fork: %s", strerror(errno));
        rm_rf(dir);
        return 127;
    }
    child_pid = pid;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    rm_rf(dir);
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        signal(sig, SIG_DFL);
        raise(sig);
        return 128 + sig;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv) {
    (void)argc;
    char self[PATH_MAX];
    if (self_path(self, sizeof self, argv[0]) < 0) {
        warn("cannot find my own executable file");
        return 127;
    }
    struct payload pl = {0};
    if (load_payload(self, &pl) < 0) {
        warn("%s: damaged or incomplete download (no payload found): %s", self, strerror(errno));
        return 127;
    }

    char roots[3][PATH_MAX];
    int nroots = 0;
    const char *env = getenv("DAKERA_CACHE_DIR");
    if (env && *env)
        snprintf(roots[nroots++], PATH_MAX, "%s", env);
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/')
        snprintf(roots[nroots++], PATH_MAX, "%s/dakera", xdg);
    else if (home && home[0] == '/' && home[1])
        snprintf(roots[nroots++], PATH_MAX, "%s/.cache/dakera", home);
    if (private_tmp_root(roots[nroots], PATH_MAX) == 0) nroots++;

    /* Quiet when the usual per-user cache is unusable (read-only home, no $HOME) and the
       private temp dir works; loud when a dir that was asked for fails. */
    int explicit_root = env && *env;
    char dir[PATH_MAX];
    for (int i = 0; i < nroots; i++) {
        int loud = (i == 0 && explicit_root) || i == nroots - 1;
        if (prepare(&pl, roots[i], dir, sizeof dir) == 0) {
            run(dir, self, argv);
            warn("cannot run %s/%s: %s (a noexec mount? set DAKERA_CACHE_DIR)", dir, PROGRAM,
                 strerror(errno));
        } else if (loud) {
            warn("cannot unpack into %s: %s", roots[i], strerror(errno));
        }
    }
    warn("no usable cache dir: unpacking into a temp dir for this run only");
    return run_once(&pl, self, argv);
}
