#include "CCurlShim.h"

#include <pthread.h>
#include <stdlib.h>

CURLcode CCurlShim_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode CCurlShim_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode CCurlShim_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode CCurlShim_setopt_write_function(CURL *handle,
    size_t (*callback)(char *data, size_t size, size_t count, void *context)) {
    return curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
}

CURLcode CCurlShim_setopt_header_function(CURL *handle,
    size_t (*callback)(char *data, size_t size, size_t count, void *context)) {
    return curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, callback);
}

CURLcode CCurlShim_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode CCurlShim_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return curl_easy_getinfo(handle, info, value);
}

/* A share handle with its own mutexes, one per kind of data libcurl locks: libcurl calls
   lock/unlock around every access to shared data, from whichever thread's easy handle is
   working, so these make the share safe across threads. */
struct CCurlShimShare {
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

static void CCurlShim_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *context) {
    (void)handle;
    (void)access;
    pthread_mutex_lock(&((struct CCurlShimShare *)context)->locks[data]);
}

static void CCurlShim_unlock(CURL *handle, curl_lock_data data, void *context) {
    (void)handle;
    pthread_mutex_unlock(&((struct CCurlShimShare *)context)->locks[data]);
}

struct CCurlShimShare *CCurlShim_share_new(void) {
    struct CCurlShimShare *shared = calloc(1, sizeof *shared);
    if (shared == NULL) return NULL;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&shared->locks[i], NULL);
    shared->share = curl_share_init();
    if (shared->share == NULL
        || curl_share_setopt(shared->share, CURLSHOPT_USERDATA, shared) != CURLSHE_OK
        || curl_share_setopt(shared->share, CURLSHOPT_LOCKFUNC, CCurlShim_lock) != CURLSHE_OK
        || curl_share_setopt(shared->share, CURLSHOPT_UNLOCKFUNC, CCurlShim_unlock) != CURLSHE_OK
        || curl_share_setopt(shared->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK
        || curl_share_setopt(shared->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
        CCurlShim_share_free(shared);
        return NULL;
    }
    return shared;
}

void CCurlShim_share_free(struct CCurlShimShare *shared) {
    if (shared == NULL) return;
    if (shared->share != NULL) curl_share_cleanup(shared->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_destroy(&shared->locks[i]);
    free(shared);
}

CURLcode CCurlShim_setopt_share(CURL *handle, struct CCurlShimShare *shared) {
    return curl_easy_setopt(handle, CURLOPT_SHARE, shared->share);
}
