/* thaw-python: a statically linked CPython 3.11 that runs one script.
 *
 * Usage: thaw-python SCRIPT [ARGS...]
 *
 * The interpreter is configured explicitly instead of from the environment, so that
 * it behaves the same on the host and in the guest library OS:
 *   - isolated: PYTHON* environment variables, the user site directory and the
 *     current directory are ignored; the `site` module (and so .pth files) is not
 *     imported at all;
 *   - prefix/home /usr, sys.path = /usr/lib/python3.11, /app,
 *     /usr/lib/python3/dist-packages (nothing else is probed);
 *   - UTF-8 mode, no setlocale() (a static glibc cannot load locales anyway);
 *   - no .pyc writing, no signal handlers (the guest delivers no signals);
 *   - hash randomisation stays on: the seed comes from getrandom();
 *   - HOME defaults to "/": the guest has no passwd database, and without HOME,
 *     os.path.expanduser() (called e.g. by sysconfig via pkg_resources) asks glibc's
 *     NSS, which probes nscd with socket()/connect() and reads /etc/nsswitch.conf.
 * Only built-in extension modules exist: there is no dlopen in a static binary.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdio.h>
#include <stdlib.h>

static const wchar_t *const search_path[] = {
    L"/usr/lib/python3.11",
    L"/app",
    L"/usr/lib/python3/dist-packages",
};

static int fail(PyConfig *config, PyStatus status)
{
    PyConfig_Clear(config);
    if (PyStatus_IsExit(status))
        return status.exitcode;
    Py_ExitStatusException(status); /* prints the error, does not return */
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCRIPT [ARGS...]\n", argc > 0 ? argv[0] : "thaw-python");
        return 2;
    }

    if (setenv("HOME", "/", 0) != 0) {
        perror("setenv");
        return 1;
    }

    PyPreConfig pre;
    PyPreConfig_InitIsolatedConfig(&pre);
    pre.utf8_mode = 1;
    pre.configure_locale = 0;
    pre.coerce_c_locale = 0;
    pre.allocator = PYMEM_ALLOCATOR_NOT_SET;
    PyStatus status = Py_PreInitialize(&pre);
    if (PyStatus_Exception(status)) {
        if (PyStatus_IsExit(status))
            return status.exitcode;
        Py_ExitStatusException(status);
    }

    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    config.user_site_directory = 0;
    config.write_bytecode = 0;
    config.use_hash_seed = 0;
    config.install_signal_handlers = 0;
    config.pathconfig_warnings = 0;
    config.parse_argv = 0;
    config.safe_path = 1;
    config.buffered_stdio = 1;

    /* Every path the path calculation would otherwise derive by probing. */
    const struct {
        wchar_t **field;
        const wchar_t *value;
    } strings[] = {
        {&config.program_name, L"thaw-python"},
        {&config.home, L"/usr"},
        {&config.executable, L"/usr/bin/thaw-python"},
        {&config.base_executable, L"/usr/bin/thaw-python"},
        {&config.prefix, L"/usr"},
        {&config.base_prefix, L"/usr"},
        {&config.exec_prefix, L"/usr"},
        {&config.base_exec_prefix, L"/usr"},
        {&config.platlibdir, L"lib"},
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        status = PyConfig_SetString(&config, strings[i].field, strings[i].value);
        if (PyStatus_Exception(status))
            return fail(&config, status);
    }

    config.module_search_paths_set = 1;
    for (size_t i = 0; i < sizeof search_path / sizeof search_path[0]; i++) {
        status = PyWideStringList_Append(&config.module_search_paths, search_path[i]);
        if (PyStatus_Exception(status))
            return fail(&config, status);
    }

    /* sys.argv = [SCRIPT, ARGS...]; the script is run as __main__. */
    status = PyConfig_SetBytesArgv(&config, argc - 1, argv + 1);
    if (PyStatus_Exception(status))
        return fail(&config, status);
    status = PyConfig_SetBytesString(&config, &config.run_filename, argv[1]);
    if (PyStatus_Exception(status))
        return fail(&config, status);

    status = Py_InitializeFromConfig(&config);
    if (PyStatus_Exception(status))
        return fail(&config, status);
    PyConfig_Clear(&config);

    return Py_RunMain();
}
