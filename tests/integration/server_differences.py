"""What differs between the MMODA servers the integration tests run on: the one place for it.

``EXPECTED``: answers that differ by server; a test reads its value with the
``server_expects`` fixture (``server_expects("jemx_lc_source_name")``).

``XFAIL``: tests that fail on a server, with the reason; each becomes a strict
xfail for that server only (an unexpected pass fails the run, so a fixed entry
must be removed).  ``client`` entries are client bugs to fix (issue 15 item 3);
``harness`` entries are limits of the offline server environment, not of the
client.  A test that expects a server-specific answer reads it from
``EXPECTED`` with ``server_expects``, instead of an xfail.
Entries name the test function, wherever its file is.

The table in ``docs/testing.rst`` ("What differs between the servers") says
the same for readers: keep them in step.
"""

EXPECTED = {
    # The 1.0 INTEGRAL plugin names the JEM-X light curve "crab" whatever the file
    # says; 2.0 keeps the file's NAME.
    "jemx_lc_source_name": {"1.3.3": "crab", "current": "Crab"},
    # SPI-ACS RATE per count rate of the light-curve service: the 1.0 all-sky plugin
    # divides by the 50 ms bin twice; the current one once.
    "spi_acs_rate_factor": {"1.3.3": 1 / 0.05, "current": 1.0},
    # exit_status.message of a failed plugin job: 1.3.3 says "failed: PRODUCT";
    # 1.3.6 gives the plugin's own summary (the reason is in debug_message).
    "spi_acs_no_data_message": {"1.3.3": "failed: spi_acs_lc",
                                "current": "Error when getting query products"},
    # The exit_status field that holds a plugin's own error text.
    "plugin_error_field": {"1.3.3": "error_message", "current": "debug_message"},
    # Products of the test instrument "empty": 1.3.6 adds file uploads, optional,
    # restricted and structured parameters.
    "empty_products": {
        "1.3.3": ["dummy", "echo", "failing", "numerical", "parametrical"],
        "current": ["dummy", "echo", "failing", "file_dummy", "numerical", "optional",
                    "parametrical", "restricted", "structured"]},
    # The echo product of "empty": how the server reports what it parsed.  The
    # explicit-empty marker "\x00" (a None value) comes back as None from 1.3.6; an
    # energy sent in the parameter's unit (MeV) comes back in keV from 1.3.6.
    "echo_of_none": {"1.3.3": "\x00", "current": None},
    "echo_of_energ_per_MeV": {"1.3.3": 1.0, "current": 1000.0},
    # A list and a mapping are sent as JSON texts: 1.3.3 echoes the text, 1.3.6 the decoded value.
    "echo_of_numbers": {"1.3.3": "[1, 2.5]", "current": [1, 2.5]},
    "echo_of_mapping": {"1.3.3": '{"a": 1}', "current": {"a": 1}},
    # The dummy failing product: 1.3.3 says "failing query"; 1.3.6 only names the product
    # (its debug_message is "InternalError()").
    "failing_job_reason": {"1.3.3": "failing query", "current": "Instrument: empty, product: failing"},
    # The ontology term of each parameter (meta-data's owl_uri): 1.3.3 does not send it.
    "parameter_types_of_empty_numerical": {
        "1.3.3": {"RA": "", "T1": "", "p": ""},
        "current": {"RA": "oda:Angle", "T1": "oda:TimeInstant", "p": "oda:Float"}},
}

_DDACLIENT = ("harness: plugin 2.0 calls RemoteDDA with an argument that ddaclient 1.1.13 (the "
              "latest on PyPI) does not take, so isgri/jemx Real mode fails before reaching the "
              "DDA stand-in; Dummy mode works")

XFAIL = {
    "current": {
        "test_isgri_multi_source_light_curves": _DDACLIENT,
        "test_isgri_real_mode_fails_with_the_servers_message": _DDACLIENT,
        "test_isgri_real_mode_fails_quickly_with_the_dda_message": _DDACLIENT,
        "test_isgri_real_mode_stays_submitted_for_the_special_scw": _DDACLIENT,
        "test_isgri_real_mode_gives_one_light_curve_per_catalog_source": _DDACLIENT,
        "test_multi_source_envelope_has_the_public_shape": _DDACLIENT,
        "test_campaign_combines_the_done_job_lists_the_failed_one_and_resumes": _DDACLIENT,
        "test_a_real_mode_campaign_stitches_the_light_curves_of_each_job": _DDACLIENT,
        "test_a_thousand_scw_real_mode_light_curve_campaign": _DDACLIENT,
    },
}


def expected(server, key):
    """The value of ``EXPECTED[key]`` on ``server``."""
    return EXPECTED[key][server]


def xfail_reason(server, test_name):
    """Why ``test_name`` fails on ``server``, or ``None``."""
    return XFAIL.get(server, {}).get(test_name)
